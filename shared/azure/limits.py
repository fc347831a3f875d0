"""Client-side limiters sized from settings, shared by every call in the process.

Per event loop, because asyncio primitives belong to one loop. They keep one worker within Microsoft's documented
limits; across scaled-out workers the services' own 429s (retried with Retry-After or backoff) are the backstop."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from shared.perloop import PerLoop
from shared.settings import Settings


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


class WindowLimiter:
    """At most `limit` operations in any `window_s` seconds (Sentinel: 75 writes per 5 minutes)."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._starts: deque[float] = deque()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                while self._starts and now - self._starts[0] >= self.window_s:
                    self._starts.popleft()
                if len(self._starts) < self.limit:
                    self._starts.append(now)
                    return
                await asyncio.sleep(self.window_s - (now - self._starts[0]))


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
    identity_protection: RateLimiter
    loganalytics: asyncio.Semaphore
    sentinel_writes: WindowLimiter
    nsg_writes: KeyedLocks = field(default_factory=KeyedLocks)

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            identity_protection=RateLimiter(settings.identity_protection_rps),
            loganalytics=asyncio.Semaphore(settings.loganalytics_concurrency),
            sentinel_writes=WindowLimiter(settings.sentinel_writes_per_5min, settings.sentinel_write_window_seconds),
        )


_LIMITS: PerLoop[Limits] = PerLoop()


def limits_for(settings: Settings) -> Limits:
    """The process's limiters for the running event loop (created on first use)."""
    return _LIMITS.get(lambda: Limits.from_settings(settings))
