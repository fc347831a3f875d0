"""Client-side limiters sized from settings, shared by every call in the process, and by every instance when they are
kept in Table storage (shared/azure/shared_limits.py; RIPOSTE_LIMITER, by default whenever storage is configured).

Per event loop, because asyncio primitives belong to one loop. The process-local ones keep one worker within
Microsoft's documented limits; the shared ones keep all scaled-out workers together within them. The services' own
429s (retried with Retry-After or backoff) are the backstop, and each 429 pauses the limiter (throttled())."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

from shared.azure.storage import StorageConnection
from shared.perloop import PerLoop
from shared.settings import Settings

# Sentinel counts a write when it arrives: the window is held 1% longer so request jitter cannot put a 76th write
# inside the service's 5 minutes (3 s of 300).
WINDOW_MARGIN = 1.01
# How late a rate-limited start may still be used, as a fraction of the spacing: with the rate at 0.95 of the
# service's, the 5% of headroom is exactly this; later, the start is dropped and another reserved. Never less than
# an event loop's usual wake-up lateness on a busy host, or every start of a fast test limiter would be dropped.
LATENESS = 0.05
MIN_LATENESS_S = 0.005
MDE_WINDOW_S = 60.0  # Defender for Endpoint counts its per-API limits per minute (and per hour)


class Admission(Protocol):
    async def acquire(self) -> None:
        """Returns when one more request may start."""

    async def throttled(self, retry_after_s: float | None) -> None:
        """The service answered 429 (Retry-After seconds, or None): hold every start back for that long."""


class Slots(Protocol):
    def hold(self) -> AbstractAsyncContextManager[None]:
        """One of the concurrent slots, for the duration of the block."""


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds (delta-seconds; an HTTP date counts as none, and the limiter's own pause applies)."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


class RateLimiter:
    """Spaces request starts at least 1/rate seconds apart (Identity Protection: 1 request/s per tenant)."""

    def __init__(self, rate_per_s: float) -> None:
        self.interval = 1.0 / rate_per_s
        self._next = 0.0
        self._lock = asyncio.Lock()
        self.waited_s = 0.0

    async def acquire(self) -> None:
        async with self._lock:
            now = time.monotonic()
            delay = self._next - now
            if delay > 0:
                self.waited_s += delay
                await asyncio.sleep(delay)
                now = time.monotonic()
            self._next = now + self.interval

    async def throttled(self, retry_after_s: float | None) -> None:
        self._next = max(self._next, time.monotonic() + (retry_after_s if retry_after_s is not None else self.interval))


class WindowLimiter:
    """At most `limit` operations in any `window_s` seconds (Sentinel: 75 writes per 5 minutes)."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._starts: deque[float] = deque()
        self._lock = asyncio.Lock()
        self._paused_until = 0.0

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                if now < self._paused_until:
                    await asyncio.sleep(self._paused_until - now)
                    continue
                while self._starts and now - self._starts[0] >= self.window_s:
                    self._starts.popleft()
                if len(self._starts) < self.limit:
                    self._starts.append(now)
                    return
                await asyncio.sleep(self.window_s - (now - self._starts[0]))

    async def throttled(self, retry_after_s: float | None) -> None:
        pause = retry_after_s if retry_after_s is not None else self.window_s / self.limit
        self._paused_until = max(self._paused_until, time.monotonic() + pause)


class ProcessSlots:
    """At most `count` holders at once in this process."""

    def __init__(self, count: int) -> None:
        self._semaphore = asyncio.Semaphore(count)

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        async with self._semaphore:
            yield


class KeyedLocks:
    """One lock per key (an NSG's ARM id, case-folded): writes to one NSG are serialised in this process."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key.lower(), asyncio.Lock())
        async with lock:
            yield


@dataclass
class Limits:
    identity_protection: Admission
    loganalytics: Slots
    sentinel_writes: Admission
    mde: Admission  # Defender for Endpoint: 100 calls a minute per API (machines, machine actions)
    nsg_writes: KeyedLocks = field(default_factory=KeyedLocks)
    # Graph replaces a named location's whole list: its read-modify-writes are serialised in this process
    named_location_writes: KeyedLocks = field(default_factory=KeyedLocks)

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        connection = _shared_storage(settings)
        if connection is not None:
            return cls._shared(settings, connection)
        return cls(
            identity_protection=RateLimiter(settings.identity_protection_rps),
            loganalytics=ProcessSlots(settings.loganalytics_concurrency),
            sentinel_writes=WindowLimiter(
                settings.sentinel_writes_per_5min, settings.sentinel_write_window_seconds * WINDOW_MARGIN
            ),
            mde=WindowLimiter(settings.mde_calls_per_minute, MDE_WINDOW_S * WINDOW_MARGIN),
        )

    @classmethod
    def _shared(cls, settings: Settings, connection: StorageConnection) -> Limits:
        from shared.azure.shared_limits import LimitTable, SharedSlots, SharedWindow

        table = LimitTable(connection)
        scope = settings.auth_tenant_id or "tenant"  # one deployment acts in one tenant
        spacing = 1.0 / settings.identity_protection_rps
        return cls(
            identity_protection=SharedWindow(
                table, "identity-protection", scope, 1, spacing, max(LATENESS * spacing, MIN_LATENESS_S)
            ),
            loganalytics=SharedSlots(table, "loganalytics", scope, settings.loganalytics_concurrency),
            sentinel_writes=SharedWindow(
                table,
                "sentinel-writes",
                scope,
                settings.sentinel_writes_per_5min,
                settings.sentinel_write_window_seconds * WINDOW_MARGIN,
                settings.sentinel_write_window_seconds * (WINDOW_MARGIN - 1),
            ),
            mde=SharedWindow(
                table,
                "mde",
                scope,
                settings.mde_calls_per_minute,
                MDE_WINDOW_S * WINDOW_MARGIN,
                MDE_WINDOW_S * (WINDOW_MARGIN - 1),
            ),
        )


def _shared_storage(settings: Settings) -> StorageConnection | None:
    """Where the shared limiters live: the app's storage, unless RIPOSTE_LIMITER=process (or auto without storage)."""
    if settings.limiter == "process":
        return None
    try:
        return StorageConnection.from_env()
    except ValueError:
        if settings.limiter == "shared":
            raise
        return None


_LIMITS: PerLoop[Limits] = PerLoop()


def limits_for(settings: Settings) -> Limits:
    """The process's limiters for the running event loop (created on first use)."""
    return _LIMITS.get(lambda: Limits.from_settings(settings))
