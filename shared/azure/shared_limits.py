"""Limiters shared by every instance through one Azure Storage table (the adapter of Table storage for this purpose).

On Flex Consumption as many queue-triggered instances run as the backlog needs, while Microsoft's limits are per
tenant: limiters of one process each would let N instances send N times the limit. Both kinds here keep their state
in entities of the RiposteLimits table, changed with ETag optimistic concurrency (If-Match; a 412 means another
instance changed it first, so read it again and retry).

SharedWindow: at most `count` request starts in any `window_s` seconds (Identity Protection: 1 per 1/rate seconds;
Sentinel writes: 75 per 5 minutes). One entity per API and scope keeps the latest `count` starts granted to anyone
(`Starts`) and `PausedUntil`. A new start t is granted only when t >= the count-th latest start + window_s,
t >= PausedUntil and t >= the latest start (the list stays ordered). Granted starts are points on one timeline that
belong to one instance each, so the sum over all instances never exceeds the limit, whatever each does with its own.

The fast path: one round trip (a read and a conditional write) reserves up to BATCH starts, as many as callers of this
process are waiting for and never more; the process hands them out in order and each caller sleeps until its own
start. A start that cannot be used within `tolerance_s` of its time is dropped rather than used late (late, it would
crowd the next holder's start). Reservations are placed at least one round trip ahead, so the answer arrives before
the first start it grants.

SharedSlots: `count` slot entities leased to one holder each until `Expires`: Log Analytics' concurrent queries. A
process that holds a slot passes it to its own next waiting caller without a round trip for up to TENURE_S after
claiming it, then gives it back to the table so other instances get their turn. While a caller holds it, the lease
is renewed every third of LEASE_S, so a live holder's never runs out under a long query, and a crashed holder's
frees itself within LEASE_S.

Retry-After: a 429 calls throttled(seconds): PausedUntil moves to now + Retry-After (one spacing when the service
sends none, as Identity Protection does), so every instance's next reservation waits for it, and this process drops
the starts it holds before then. Another instance may still use the few (at most BATCH) it reserved earlier.

Times are wall-clock (time.time()) because instances compare them; Azure hosts keep NTP time within milliseconds."""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from shared.azure.errors import PreconditionFailed
from shared.azure.storage import ETAG, EntityExists, StorageConnection, TableStore, managed_identity_credential

LIMITS_TABLE = "RiposteLimits"
BATCH = 4  # most starts one round trip reserves for a process
TENURE_S = 2.0  # how long a process keeps passing a slot to its own callers before the table gets it back
LEASE_S = 15.0  # a slot lease's length; renewed every third of it while held
POLL_S = (0.02, 0.1)  # when every slot is taken, the table is asked again after a random pause in this range
MAX_DROPS = 8  # starts one caller drops for lateness before it goes late anyway (a starved process still progresses)
MAX_CONFLICTS = 50  # 412s in a row before giving up on one reservation (other instances keep winning)
HOLDER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LimitTable:
    """The RiposteLimits table, created on first use (once per process and event loop)."""

    def __init__(self, connection: StorageConnection) -> None:
        credential = None if connection.connection_string else managed_identity_credential()
        self.store = TableStore(connection, LIMITS_TABLE, credential)
        self._ready: asyncio.Task[None] | None = None

    async def ready(self) -> TableStore:
        if self._ready is None:
            self._ready = asyncio.ensure_future(self.store.ensure())
        await asyncio.shield(self._ready)
        return self.store

    async def close(self) -> None:
        await self.store.close()


async def _conflict_pause(attempt: int) -> None:
    await asyncio.sleep(random.uniform(0, min(0.05, 0.002 * (attempt + 1))))


@dataclass
class _Window:
    starts: list[float]
    paused_until: float
    etag: str | None  # None: the entity does not exist yet


class SharedWindow:
    """At most `count` starts in any `window_s` seconds, across every process sharing the table."""

    def __init__(
        self, table: LimitTable, api: str, scope: str, count: int, window_s: float, tolerance_s: float
    ) -> None:
        self.table = table
        self.partition = f"{api}:{scope}"
        self.count = count
        self.window_s = window_s
        self.tolerance_s = tolerance_s
        self._granted: deque[float] = deque()
        self._waiting = 0
        self._lock = asyncio.Lock()
        self._paused_until = 0.0
        self._round_trip_s = 0.01  # a moving estimate of one reservation's round trip
        self.reservations = 0  # round trips that granted starts (for the benches)
        self.dropped = 0  # starts given up because they could no longer be used on time

    async def acquire(self) -> None:
        """Returns at this caller's start: from then on it may send one request."""
        self._waiting += 1
        try:
            for attempt in range(MAX_DROPS + 1):
                async with self._lock:
                    start = await self._take()
                delay = start - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                if (time.time() - start <= self.tolerance_s and start >= self._paused_until) or attempt == MAX_DROPS:
                    return  # on time, or dropped too often: go (the service's 429 and its retry remain)
                self.dropped += 1
        finally:
            self._waiting -= 1

    async def _take(self) -> float:
        while True:
            while self._granted:
                start = self._granted.popleft()
                if start >= self._paused_until and time.time() - start <= self.tolerance_s:
                    return start
                self.dropped += 1
            await self._reserve(max(1, min(BATCH, self._waiting)))

    async def _read(self, store: TableStore) -> _Window:
        found = await store.get(self.partition, "window")
        if found is None:
            return _Window([], 0.0, None)
        entity, etag = found
        return _Window(json.loads(entity.get("Starts") or "[]"), float(entity.get("PausedUntil") or 0), etag)

    async def _write(self, store: TableStore, window: _Window) -> None:
        entity = {
            "PartitionKey": self.partition,
            "RowKey": "window",
            "Starts": json.dumps([round(s, 6) for s in window.starts[-self.count :]]),
            "PausedUntil": window.paused_until,
        }
        if window.etag is None:
            await store.create(entity)
        else:
            await store.replace(entity, window.etag)

    async def _reserve(self, wanted: int) -> None:
        store = await self.table.ready()
        for attempt in range(MAX_CONFLICTS):
            began = time.time()
            window = await self._read(store)
            earliest = max(time.time() + 2 * self._round_trip_s, window.paused_until)
            granted: list[float] = []
            for _ in range(wanted):
                start = max(earliest, window.starts[-1] if window.starts else 0.0)
                if len(window.starts) >= self.count:
                    start = max(start, window.starts[-self.count] + self.window_s)
                window.starts.append(start)
                granted.append(start)
            try:
                await self._write(store, window)
            except (PreconditionFailed, EntityExists):
                await _conflict_pause(attempt)
                continue
            self._round_trip_s = 0.8 * self._round_trip_s + 0.2 * (time.time() - began)
            self._paused_until = max(self._paused_until, window.paused_until)
            self._granted.extend(granted)
            self.reservations += 1
            return
        raise RuntimeError(f"limiter {self.partition}: {MAX_CONFLICTS} conflicting updates in a row")

    async def throttled(self, retry_after_s: float | None) -> None:
        """The service answered 429: no instance starts again before Retry-After (one spacing without it)."""
        until = time.time() + (retry_after_s if retry_after_s is not None else self.window_s / self.count)
        self._paused_until = max(self._paused_until, until)
        store = await self.table.ready()
        for attempt in range(MAX_CONFLICTS):
            window = await self._read(store)
            if window.paused_until >= until:
                return
            window.paused_until = until
            try:
                await self._write(store, window)
                return
            except (PreconditionFailed, EntityExists):
                await _conflict_pause(attempt)


@dataclass
class _Lease:
    row: str
    etag: str
    claimed_at: float


class SharedSlots:
    """At most `count` holders at once across every process (Log Analytics: 5 concurrent queries)."""

    def __init__(self, table: LimitTable, api: str, scope: str, count: int, lease_s: float = LEASE_S) -> None:
        self.table = table
        self.partition = f"{api}:{scope}"
        self.count = count
        self.lease_s = lease_s
        self._waiters: deque[asyncio.Future[_Lease]] = deque()
        self.claims = 0  # round trips that claimed a slot (for the benches)

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        lease = await self._take()
        renewing = asyncio.ensure_future(self._renew(lease))
        try:
            yield
        finally:
            renewing.cancel()
            await asyncio.gather(renewing, return_exceptions=True)
            await self._give_back(lease)

    def _entity(self, row: str, holder: str, expires: float) -> dict[str, Any]:
        return {"PartitionKey": self.partition, "RowKey": row, "Holder": holder, "Expires": expires}

    async def _renew(self, lease: _Lease) -> None:
        store = await self.table.ready()
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                lease.etag = await store.replace(
                    self._entity(lease.row, HOLDER, time.time() + self.lease_s), lease.etag
                )
            except PreconditionFailed:
                return  # it ran out (this process stalled longer than a lease) and another holder has it

    async def _take(self) -> _Lease:
        while True:
            # Callers claim side by side (each tries the free slots in its own random order), so a run's independent
            # queries run at once; only when no slot is free does a caller wait for a hand-over or poll again.
            lease = await self._claim()
            if lease is not None:
                return lease
            waiter: asyncio.Future[_Lease] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                return await asyncio.wait_for(asyncio.shield(waiter), random.uniform(*POLL_S))
            except TimeoutError:
                if waiter.done():  # handed over just as the wait ran out
                    return waiter.result()
                waiter.cancel()
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    await self._give_back(waiter.result())
                waiter.cancel()
                raise

    async def _claim(self) -> _Lease | None:
        store = await self.table.ready()
        rows = {f"slot-{i}" for i in range(self.count)}
        seen: dict[str, tuple[dict[str, Any], str]] = {}
        async for entity in store.query("PartitionKey eq @pk", {"pk": self.partition}):
            if entity["RowKey"] in rows:
                seen[entity["RowKey"]] = (entity, str(entity[ETAG]))
        now = time.time()
        free = [row for row in rows if row not in seen or float(seen[row][0].get("Expires") or 0) < now]
        random.shuffle(free)  # instances claiming at once try different slots
        for row in free:
            claimed = self._entity(row, HOLDER, now + self.lease_s)
            try:
                etag = await store.replace(claimed, seen[row][1]) if row in seen else await store.create(claimed)
            except (PreconditionFailed, EntityExists):
                continue
            self.claims += 1
            return _Lease(row, etag, now)
        return None

    async def _give_back(self, lease: _Lease) -> None:
        if time.time() - lease.claimed_at < TENURE_S:
            while self._waiters:
                waiter = self._waiters.popleft()
                if not waiter.done():
                    waiter.set_result(lease)
                    return
        store = await self.table.ready()
        try:
            await store.replace(self._entity(lease.row, "", 0.0), lease.etag)
        except PreconditionFailed:
            pass  # it expired and another holder has it now
