"""Queue triggers for the local functions host, delivered the way the Functions runtime does it:

- polls the queue with exponential back-off up to host.json's maxPollingInterval when it is empty;
- takes up to batchSize messages, runs the function for each (at most batchSize at once);
- keeps a message invisible while its function runs (10 minutes, renewed), so a crashed host's messages come back
  only after that;
- deletes the message when the function succeeds; when it raises, makes the message visible again after
  visibilityTimeout, and after maxDequeueCount attempts moves it to <queue>-poison.
Messages are base64 text, the runtime's default encoding."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.functions import meta

log = logging.getLogger("riposte.host.queues")
# How long a message stays invisible while its function runs (renewed at half of it). The Functions runtime holds it
# for 10 minutes, not configurable: a message a crashed host was running comes back only then. Tests may shorten it.
LEASE_S = int(os.environ.get("RIPOSTE_HOST_QUEUE_LEASE_S", "600"))


def _timespan(text: str, default: float) -> float:
    match = re.match(r"^(\d+):(\d+):(\d+(?:\.\d+)?)$", text or "")
    if not match:
        return default
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


@dataclass(frozen=True)
class QueueOptions:
    max_polling_s: float = 2.0
    visibility_timeout_s: float = 0.0
    batch_size: int = 16
    max_dequeue_count: int = 5

    @classmethod
    def from_host_json(cls, root: Path) -> QueueOptions:
        try:
            queues = json.loads((root / "host.json").read_text())["extensions"]["queues"]
        except (OSError, KeyError, ValueError):
            return cls()
        # Benchmarks and tests may poll faster, and retry sooner, than host.json says.
        polling = os.environ.get("RIPOSTE_HOST_MAX_POLLING_S")
        retry_delay = os.environ.get("RIPOSTE_HOST_VISIBILITY_TIMEOUT_S")
        return cls(
            max_polling_s=float(polling) if polling else _timespan(queues.get("maxPollingInterval", ""), 2.0),
            visibility_timeout_s=(
                float(retry_delay) if retry_delay else _timespan(queues.get("visibilityTimeout", ""), 0.0)
            ),
            batch_size=int(queues.get("batchSize", 16)),
            max_dequeue_count=int(queues.get("maxDequeueCount", 5)),
        )


def _client(connection_string: str, queue: str) -> Any:
    from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy
    from azure.storage.queue.aio import QueueClient

    return QueueClient.from_connection_string(
        connection_string,
        queue,
        message_encode_policy=TextBase64EncodePolicy(),
        message_decode_policy=TextBase64DecodePolicy(),
    )


def _decode(message: Any) -> Any:
    """The trigger's argument, built by the Functions library's own converter from the runtime's data."""
    datum = meta.Datum
    metadata = {
        "Id": datum(message.id, "string"),
        "DequeueCount": datum(message.dequeue_count, "int"),
        "PopReceipt": datum(message.pop_receipt, "string"),
    }
    for key, attr in (
        ("InsertionTime", "inserted_on"),
        ("ExpirationTime", "expires_on"),
        ("NextVisibleTime", "next_visible_on"),
    ):
        value = getattr(message, attr, None)
        if value is not None:
            metadata[key] = datum(value.isoformat(), "string")
    converter = meta.get_binding_registry().get("queueTrigger")  # type: ignore[no-untyped-call]
    return converter.decode(datum(str(message.content), "string"), trigger_metadata=metadata)


class QueueListener:
    def __init__(
        self,
        name: str,
        queue: str,
        connection_string: str,
        invoke: Callable[[Any], Awaitable[None]],
        options: QueueOptions,
    ) -> None:
        self.name = name
        self.queue = queue
        self.connection_string = connection_string
        self.invoke = invoke
        self.options = options
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        client = _client(self.connection_string, self.queue)
        poison = _client(self.connection_string, f"{self.queue}-poison")
        for c in (client, poison):
            try:
                await c.create_queue()
            except Exception:  # noqa: S110 - it exists already (ResourceExistsError)
                pass
        running: set[asyncio.Task[None]] = set()
        delay = 0.05
        try:
            while not self._stopping.is_set():
                room = self.options.batch_size - len(running)
                messages = []
                if room > 0:
                    try:
                        async for message in client.receive_messages(
                            messages_per_page=min(room, 32), max_messages=min(room, 32), visibility_timeout=LEASE_S
                        ):
                            messages.append(message)
                    except Exception as exc:
                        log.warning("queue %s: receive failed: %s", self.queue, exc)
                for message in messages:
                    task = asyncio.create_task(self._handle(client, poison, message))
                    running.add(task)
                    task.add_done_callback(running.discard)
                if messages:
                    delay = 0.05
                    continue
                try:
                    await asyncio.wait_for(self._stopping.wait(), timeout=delay)
                except TimeoutError:
                    pass
                delay = min(delay * 2, self.options.max_polling_s)
        finally:
            for task in running:
                task.cancel()
            await client.close()
            await poison.close()

    async def _handle(self, client: Any, poison: Any, message: Any) -> None:
        receipt = {"value": message.pop_receipt}
        if message.dequeue_count > self.options.max_dequeue_count:
            # Seen more often than allowed without ever being settled (the host crashed while running it, each time):
            # the runtime moves such a message to the poison queue without running it again.
            await poison.send_message(str(message.content))
            await client.delete_message(message.id, receipt["value"])
            log.error(
                "message %s moved to %s-poison after %s deliveries", message.id, self.queue, message.dequeue_count
            )
            return

        async def keep_invisible() -> None:
            while True:
                await asyncio.sleep(LEASE_S / 2)
                updated = await client.update_message(message.id, receipt["value"], visibility_timeout=LEASE_S)
                receipt["value"] = updated.pop_receipt

        renewer = asyncio.create_task(keep_invisible())
        try:
            await self.invoke(_decode(message))
            failed = None
        except Exception as exc:
            failed = exc
        finally:
            renewer.cancel()
        try:
            if failed is None:
                await client.delete_message(message.id, receipt["value"])
                return
            log.error("%s failed on message %s (attempt %s): %s", self.name, message.id, message.dequeue_count, failed)
            if message.dequeue_count >= self.options.max_dequeue_count:
                await poison.send_message(str(message.content))
                await client.delete_message(message.id, receipt["value"])
                log.error("message %s moved to %s-poison", message.id, self.queue)
            else:
                await client.update_message(
                    message.id, receipt["value"], visibility_timeout=int(self.options.visibility_timeout_s)
                )
        except Exception as exc:  # the lease expired meanwhile: the message comes back by itself
            log.warning("queue %s: could not settle message %s: %s", self.queue, message.id, exc)

    def stop(self) -> None:
        self._stopping.set()
