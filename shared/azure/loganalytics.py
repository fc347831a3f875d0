"""The Log Analytics query API on azure-monitor-query's LogsQueryClient (.aio).

The endpoint comes from settings; the token audience stays https://api.loganalytics.io whatever the endpoint (the
emulated cloud's URL must not become the token scope). At most settings.loganalytics_concurrency queries run at once
(the service allows 5 concurrent queries per identity and queues the rest). Rows come back as dicts keyed by column
name with typed values: datetime columns as aware datetimes (the SDK parses them), long/int as int, real as float,
bool as bool, dynamic as the decoded JSON; the v1 API may send any of these as strings.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.azure.errors import AzureError, from_sdk
from shared.azure.limits import Limits
from shared.settings import Settings

if TYPE_CHECKING:
    from azure.monitor.query.aio import LogsQueryClient

SERVICE = "loganalytics"
AUDIENCE = "https://api.loganalytics.io"
# Queries are reads sent as POST: retry them on 429/5xx like GETs (azure-core retries a POST only on Retry-After).
_RETRY_METHODS = frozenset({"HEAD", "GET", "PUT", "DELETE", "OPTIONS", "TRACE", "POST"})

Row = dict[str, Any]
Timespan = timedelta | tuple[datetime, timedelta] | tuple[datetime, datetime] | None


class PartialQueryResult(AzureError):
    """The service ran the query but stopped early (limits, a failing part); `rows` holds what did come back."""

    def __init__(self, code: str, message: str, rows: list[Row]) -> None:
        super().__init__(SERVICE, 200, code, message)
        self.rows = rows


def _number(value: Any, kind: type[int] | type[float]) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if kind is float:
        return float(value)  # also "NaN", "Infinity", "-Infinity" as the API writes them
    try:
        return int(value)
    except ValueError:
        return int(float(value))


def typed(value: Any, column_type: str) -> Any:
    """A cell's value as its Kusto column type says (the API sends long/real/bool/dynamic as strings at times)."""
    if value is None:
        return None
    kind = column_type.lower()
    if kind in ("long", "int"):
        return _number(value, int)
    if kind in ("real", "double", "decimal"):
        return _number(value, float)
    if kind == "bool":
        return value if isinstance(value, bool) else str(value).strip().lower() in ("true", "1")
    if kind == "dynamic" and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def rows_of(table: Any) -> list[Row]:
    """A LogsTable as a list of {column: typed value}."""
    columns: list[str] = list(table.columns)
    types: list[str] = list(table.columns_types)
    rows: list[Row] = []
    for row in table.rows:
        rows.append({name: typed(row[index], types[index]) for index, name in enumerate(columns)})
    return rows


@dataclass(frozen=True)
class Table:
    """A result table: its columns as (name, Kusto type), and its rows typed by them."""

    columns: list[tuple[str, str]]
    rows: list[Row]


def table_of(table: Any) -> Table:
    return Table(list(zip(table.columns, table.columns_types, strict=True)), rows_of(table))


def _innermost_message(error: Any) -> str:
    """The Log Analytics error body nests the useful text: error.innererror.innererror.message."""
    model = getattr(error, "model", None)
    message = getattr(model, "message", None)
    return str(message) if message else ""


class LogAnalyticsAdapter:
    def __init__(self, settings: Settings, credential: Any, limits: Limits) -> None:
        self.settings = settings
        self.credential = credential
        self.limits = limits
        self._client: LogsQueryClient | None = None

    def client(self) -> LogsQueryClient:
        if self._client is None:
            from azure.monitor.query.aio import LogsQueryClient

            kwargs: dict[str, Any] = {
                "endpoint": self.settings.loganalytics_endpoint,
                "audience": AUDIENCE,
                "retry_total": self.settings.max_retries,
                "retry_backoff_factor": self.settings.retry_backoff_seconds,
            }
            if self.settings.ca_bundle:
                kwargs["connection_verify"] = self.settings.ca_bundle
            self._client = LogsQueryClient(self.credential, **kwargs)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def query(self, workspace_id: str, kql: str, timespan: Timespan) -> list[Row]:
        """Runs one query on a workspace (its GUID, the customer id) over `timespan`; the first table's rows.
        Raises AzureError (PartialQueryResult when the service answered with part of the data and an error)."""
        return (await self.query_table(workspace_id, kql, timespan)).rows

    async def query_table(self, workspace_id: str, kql: str, timespan: Timespan) -> Table:
        """As query, with the first table's column types."""
        from azure.monitor.query import LogsQueryStatus

        async with self.limits.loganalytics.hold():
            try:
                result = await self.client().query_workspace(
                    workspace_id,
                    kql,
                    timespan=timespan,
                    server_timeout=math.ceil(self.settings.enrichment_timeout_seconds),
                    retry_on_methods=_RETRY_METHODS,
                )
            except Exception as error:
                translated = from_sdk(SERVICE, error)
                detail = _innermost_message(error)
                if detail and detail not in translated.message:
                    raise type(translated)(
                        SERVICE, translated.status, translated.code, f"{translated.message}: {detail}"
                    ) from error
                raise translated from error
        if result.status == LogsQueryStatus.PARTIAL:
            partial = getattr(result, "partial_data", None) or []
            failure = getattr(result, "partial_error", None)
            rows = rows_of(partial[0]) if partial else []
            code = str(getattr(failure, "code", "") or "PartialError")
            raise PartialQueryResult(code, str(getattr(failure, "message", "") or failure), rows)
        tables = getattr(result, "tables", None) or []
        return table_of(tables[0]) if tables else Table([], [])


ADAPTER = LogAnalyticsAdapter
