"""One value per running event loop. asyncio primitives and the async SDK clients belong to the loop that made them,
and a process can run several loops in turn (the Functions worker, the local host, the tests), so anything cached for
the life of the process is cached per loop. An entry whose loop is closed is dropped, never handed out."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerLoop(Generic[T]):
    def __init__(self) -> None:
        # Keyed by id(loop), with the loop kept beside the value: a new loop may reuse a closed one's id.
        self._values: dict[int, tuple[asyncio.AbstractEventLoop, T]] = {}
        self._locks: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Lock]] = {}

    def current(self) -> T | None:
        """The running loop's value, or None when it has none yet."""
        loop = asyncio.get_running_loop()
        entry = self._values.get(id(loop))
        return entry[1] if entry is not None and entry[0] is loop else None

    def put(self, value: T) -> T:
        """Makes `value` the running loop's (replacing any), and forgets the values of closed loops."""
        loop = asyncio.get_running_loop()
        for key in [k for k, (other, _) in self._values.items() if other.is_closed()]:
            del self._values[key]
        self._values[id(loop)] = (loop, value)
        return value

    def get(self, make: Callable[[], T]) -> T:
        """The running loop's value, made by `make()` on first use."""
        value = self.current()
        return self.put(make()) if value is None else value

    async def aget(self, make: Callable[[], Awaitable[T]]) -> T:
        """Like get, for a value made asynchronously: callers on one loop wait for the first one's `make()`."""
        value = self.current()
        if value is not None:
            return value
        async with self._lock():
            value = self.current()
            return self.put(await make()) if value is None else value

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        entry = self._locks.get(id(loop))
        if entry is None or entry[0] is not loop:
            for key in [k for k, (other, _) in self._locks.items() if other.is_closed()]:
                del self._locks[key]
            entry = self._locks[id(loop)] = (loop, asyncio.Lock())
        return entry[1]
