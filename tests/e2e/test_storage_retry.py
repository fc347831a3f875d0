"""Storage calls survive a connection that drops before any answer (Azurite closing a stale keep-alive connection as
an insert goes out was a 500 at intake): a TCP proxy in front of Azurite hangs up on chosen connections."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from shared.azure.storage import StorageConnection, TableStore, WorkQueue


class DroppingProxy:
    """Forwards TCP to Azurite; the next `drop` requests, on whichever connection they come, are read and the
    connection is cut without an answer, as a stale keep-alive connection fails."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.drop = 0
        self.dropped = 0
        self.port = 0

    async def _upstream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, client: Any) -> None:
        while data := await reader.read(65536):
            if self.drop > 0:
                self.drop -= 1
                self.dropped += 1
                client.abort()
                break
            writer.write(data)
            await writer.drain()
        writer.close()

    @staticmethod
    async def _downstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        await asyncio.gather(
            self._upstream(reader, upstream_writer, writer.transport),
            self._downstream(upstream_reader, writer),
            return_exceptions=True,
        )

    @asynccontextmanager
    async def running(self) -> AsyncIterator[DroppingProxy]:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        async with server:
            yield self
            server.close()


def _through(connection: str, service: str, port: int) -> StorageConnection:
    """The connection string with one service's endpoint moved to the proxy."""
    return StorageConnection(
        re.sub(rf"({service}Endpoint=http://127\.0\.0\.1:)\d+", rf"\g<1>{port}", connection), None, None
    )


def _port(connection: str, service: str) -> int:
    found = re.search(rf"{service}Endpoint=http://127\.0\.0\.1:(\d+)", connection)
    assert found is not None
    return int(found.group(1))


async def test_an_insert_and_a_batch_whose_connection_drops_unanswered_are_sent_again(azurite: str) -> None:
    async with DroppingProxy(_port(azurite, "Table")).running() as proxy:
        table = TableStore(_through(azurite, "Table", proxy.port), f"Retry{uuid.uuid4().hex[:12]}")
        try:
            await table.ensure()
            proxy.drop = 2
            await table.create({"PartitionKey": "p", "RowKey": "insert", "Value": 1})
            assert proxy.dropped == 2
            proxy.drop = 1
            await table.transaction({"PartitionKey": "p", "RowKey": "batch"}, None, [], create=True)
            assert proxy.dropped == 3
            assert (await table.get("p", "insert")) is not None
            assert (await table.get("p", "batch")) is not None
        finally:
            await table.close()


async def test_a_queue_send_whose_connection_drops_is_sent_again_at_once(azurite: str) -> None:
    async with DroppingProxy(_port(azurite, "Queue")).running() as proxy:
        queue = WorkQueue(_through(azurite, "Queue", proxy.port), f"retry-{uuid.uuid4().hex[:12]}")
        try:
            await queue.ensure()
            proxy.drop = 1
            started = time.monotonic()
            await queue.send("hello")
            elapsed = time.monotonic() - started
            assert proxy.dropped == 1
            assert elapsed < 2.5, f"the first retry waited {elapsed:.1f} s (the SDK's default backoff is 15 s)"
            properties = await queue._client.get_queue_properties()
            assert properties.approximate_message_count == 1
        finally:
            await queue.close()
