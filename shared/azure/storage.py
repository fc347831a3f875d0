"""Azure Table and Queue storage (azure-data-tables, azure-storage-queue; async): the engine's durable state.

Connection as Azure Functions itself does it: the AzureWebJobsStorage connection string (locally
UseDevelopmentStorage=true, Azurite), or identity-based AzureWebJobsStorage__accountName / __tableServiceUri /
__queueServiceUri with the app's managed identity."""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from shared.azure.errors import AzureError, PreconditionFailed, from_sdk

RUNS_TABLE = "RiposteRuns"
DEDUP_TABLE = "RiposteDedup"
BUDGET_TABLE = "RiposteBudget"
WORK_QUEUE = "riposte-runs"
POISON_QUEUE = f"{WORK_QUEUE}-poison"  # the name the Functions runtime gives it
MAX_VISIBILITY_S = 7 * 24 * 3600  # Azure Storage queues' longest visibility timeout


ETAG = "_etag"  # where query results carry each entity's ETag
CONNECTION_RETRIES = 3  # a request that never got an answer (a stale keep-alive connection) is sent again
# Queue calls retry any failure, but the storage SDK's ExponentialRetry waits 15 s (+3^n) first: a dropped connection
# at intake wants a prompt retry, so 1 s each time (initial_backoff + increment_base^n).
QUEUE_RETRY: dict[str, Any] = {
    "retry_total": CONNECTION_RETRIES,
    "initial_backoff": 0,
    "increment_base": 1,
    "random_jitter_range": 0,
}

T = TypeVar("T")


async def retry_unanswered(send: Callable[[], Awaitable[T]]) -> T:
    """Sends a table POST (an insert, a batch) again when its connection failed before any answer came back.

    azure-core retries connection errors for idempotent methods only, so Azurite closing an idle keep-alive connection
    just as an insert went out was a 500 at intake. ServiceRequestError is azure-core's "the request did not reach
    the service" class; an answered request, even a failed one, is never resent here."""
    from azure.core.exceptions import ServiceRequestError

    for attempt in range(CONNECTION_RETRIES):
        try:
            return await send()
        except ServiceRequestError:
            await asyncio.sleep(0.05 * attempt)
    return await send()


class EntityExists(AzureError):
    pass


@dataclass(frozen=True)
class StorageConnection:
    connection_string: str | None
    table_endpoint: str | None
    queue_endpoint: str | None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StorageConnection:
        source = os.environ if env is None else env
        conn = source.get("AzureWebJobsStorage")
        if conn:
            return cls(conn, None, None)
        account = source.get("AzureWebJobsStorage__accountName")
        table = source.get("AzureWebJobsStorage__tableServiceUri") or (
            f"https://{account}.table.core.windows.net" if account else None
        )
        queue = source.get("AzureWebJobsStorage__queueServiceUri") or (
            f"https://{account}.queue.core.windows.net" if account else None
        )
        if not table or not queue:
            raise ValueError("set AzureWebJobsStorage, or AzureWebJobsStorage__accountName for identity-based storage")
        return cls(None, table, queue)


def managed_identity_credential() -> Any:
    """For identity-based AzureWebJobsStorage: the app's managed identity (AZURE_CLIENT_ID names a user-assigned one,
    as the Functions runtime's own storage connection does with AzureWebJobsStorage__clientId)."""
    from azure.identity.aio import DefaultAzureCredential

    client_id = os.environ.get("AzureWebJobsStorage__clientId") or os.environ.get("AZURE_CLIENT_ID")  # noqa: SIM112
    return DefaultAzureCredential(managed_identity_client_id=client_id) if client_id else DefaultAzureCredential()


class TableStore:
    """A thin async wrapper over one table: entities are dicts; ETags and errors are ours, not the SDK's."""

    def __init__(self, connection: StorageConnection, table: str, credential: Any = None) -> None:
        from azure.data.tables.aio import TableClient

        if connection.connection_string:
            self._client = TableClient.from_connection_string(connection.connection_string, table_name=table)
        else:
            assert connection.table_endpoint is not None
            self._client = TableClient(endpoint=connection.table_endpoint, table_name=table, credential=credential)
        self.table = table

    async def ensure(self) -> None:
        from azure.core.exceptions import ResourceExistsError

        try:
            await self._client.create_table()
        except ResourceExistsError:
            pass

    async def get(self, partition: str, row: str) -> tuple[dict[str, Any], str] | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            entity = await self._client.get_entity(partition, row)
        except ResourceNotFoundError:
            return None
        except Exception as exc:
            raise from_sdk("storage", exc) from exc
        return dict(entity), str(entity.metadata["etag"])

    async def create(self, entity: dict[str, Any]) -> str:
        from azure.core.exceptions import ResourceExistsError

        try:
            metadata = await retry_unanswered(functools.partial(self._client.create_entity, entity))
        except ResourceExistsError as exc:
            raise EntityExists(
                "storage", 409, "EntityAlreadyExists", f"{entity['PartitionKey']}/{entity['RowKey']}"
            ) from exc
        except Exception as exc:
            raise from_sdk("storage", exc) from exc
        return str(metadata["etag"])

    async def delete(self, partition: str, row: str, etag: str | None = None) -> None:
        """Deletes; with an etag, only if nobody changed it since (PreconditionFailed otherwise)."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError

        condition: dict[str, Any] = {}
        if etag is not None:
            condition = {"etag": etag, "match_condition": MatchConditions.IfNotModified}
        try:
            await self._client.delete_entity(partition, row, **condition)  # a missing entity is not an error
        except ResourceModifiedError as exc:
            raise PreconditionFailed("storage", 412, "UpdateConditionNotSatisfied", row) from exc
        except Exception as exc:
            raise from_sdk("storage", exc) from exc

    async def replace(self, entity: dict[str, Any], etag: str | None) -> str:
        """Replace; with an etag, only if nobody changed it since (412 otherwise)."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError
        from azure.data.tables import UpdateMode

        try:
            if etag is None:
                metadata = await self._client.upsert_entity(entity, mode=UpdateMode.REPLACE)
            else:
                metadata = await self._client.update_entity(
                    entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
                )
        except ResourceModifiedError as exc:
            raise PreconditionFailed("storage", 412, "UpdateConditionNotSatisfied", entity["RowKey"]) from exc
        except Exception as exc:
            raise from_sdk("storage", exc) from exc
        return str(metadata["etag"])

    async def transaction(
        self, guarded: dict[str, Any], etag: str | None, upserts: list[dict[str, Any]], *, create: bool = False
    ) -> str:
        """Atomically, in one partition: create `guarded` (create=True; EntityExists when it exists), or replace it
        (If-Match etag when given), and upsert the rest. More than 100 operations go in several transactions, the
        guarded one first."""
        from azure.core import MatchConditions
        from azure.data.tables import TableTransactionError, UpdateMode

        if not upserts:
            # One entity needs no batch: a batch's multipart body costs several times the CPU of a plain request.
            return await self.create(guarded) if create else await self.replace(guarded, etag)
        operations: list[Any] = []
        if create:
            operations.append(("create", guarded))
        elif etag is None:
            operations.append(("upsert", guarded, {"mode": UpdateMode.REPLACE}))
        else:
            operations.append(
                (
                    "update",
                    guarded,
                    {"mode": UpdateMode.REPLACE, "etag": etag, "match_condition": MatchConditions.IfNotModified},
                )
            )
        operations.extend(("upsert", e, {"mode": UpdateMode.REPLACE}) for e in upserts)
        etag_out = ""
        for start in range(0, len(operations), 100):  # a table transaction holds at most 100 operations
            chunk = operations[start : start + 100]
            try:
                results = await retry_unanswered(functools.partial(self._client.submit_transaction, chunk))
            except TableTransactionError as exc:
                if (
                    create
                    and start == 0
                    and (getattr(exc, "status_code", None) == 409 or "EntityAlreadyExists" in str(exc))
                ):
                    raise EntityExists("storage", 409, "EntityAlreadyExists", guarded["RowKey"]) from exc
                if getattr(exc, "status_code", None) == 412 or "UpdateConditionNotSatisfied" in str(exc):
                    raise PreconditionFailed("storage", 412, "UpdateConditionNotSatisfied", guarded["RowKey"]) from exc
                raise from_sdk("storage", exc) from exc
            except Exception as exc:
                raise from_sdk("storage", exc) from exc
            if start == 0:
                etag_out = str(results[0]["etag"])
        return etag_out

    async def query(
        self, query_filter: str, parameters: dict[str, Any] | None = None, page_size: int | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Entities in key order; page_size asks the service for at most that many per page ($top)."""
        try:
            pages = self._client.query_entities(query_filter, parameters=parameters or {}, results_per_page=page_size)
            async for entity in pages:
                yield {**entity, ETAG: entity.metadata.get("etag")}
        except Exception as exc:
            raise from_sdk("storage", exc) from exc

    async def close(self) -> None:
        await self._client.close()


class WorkQueue:
    """A storage queue with the Functions queue trigger's default encoding (base64 text)."""

    def __init__(self, connection: StorageConnection, name: str = WORK_QUEUE, credential: Any = None) -> None:
        from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy
        from azure.storage.queue.aio import QueueClient

        policies: dict[str, Any] = {
            "message_encode_policy": TextBase64EncodePolicy(),
            "message_decode_policy": TextBase64DecodePolicy(),
            **QUEUE_RETRY,
        }
        if connection.connection_string:
            self._client = QueueClient.from_connection_string(connection.connection_string, name, **policies)
        else:
            assert connection.queue_endpoint is not None
            self._client = QueueClient(connection.queue_endpoint, name, credential=credential, **policies)
        self.name = name

    async def ensure(self) -> None:
        from azure.core.exceptions import ResourceExistsError

        try:
            await self._client.create_queue()
        except ResourceExistsError:
            pass

    async def send(self, content: str, delay_s: float = 0) -> None:
        delay = max(0, min(int(delay_s + 0.999), MAX_VISIBILITY_S))
        try:
            await self._client.send_message(content, visibility_timeout=delay or None)
        except Exception as exc:
            raise from_sdk("storage", exc) from exc

    async def close(self) -> None:
        await self._client.close()
