"""Fuzzing every HTTP route of function_app.py over HTTP, against a live host: no input may get a 5xx, and no input
that is refused may leave anything behind. (Grows into the whole drill below.)"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Persisted:
    """What intake leaves in storage: run headers and delivery (dedup) records."""

    runs: int
    deliveries: int


def count_persisted(storage_connection: str) -> Persisted:
    """Counts run headers and delivery records straight from Table storage (a table not yet made counts 0)."""
    # Imported here: azure.data.tables pulls in aiohttp, which fixes its SSL context at import (see tests/conftest.py).
    from azure.core.exceptions import ResourceNotFoundError
    from azure.data.tables import TableClient

    def count(table_name: str, query: str | None) -> int:
        with TableClient.from_connection_string(storage_connection, table_name) as table:
            try:
                rows = (
                    table.query_entities(query, select=["PartitionKey"])
                    if query
                    else table.list_entities(select=["PartitionKey"])
                )
                return sum(1 for _ in rows)
            except ResourceNotFoundError:
                return 0

    return Persisted(runs=count("RiposteRuns", "RowKey eq 'run'"), deliveries=count("RiposteDedup", None))
