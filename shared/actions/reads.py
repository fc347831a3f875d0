"""A run's reads of directory objects, made once per run invocation and shared by enrichment, planning and guardrails.

The engine builds one RunClients per run invocation (never shared between runs or invocations): every action of that
invocation sees the same user, the same memberships and the same Identity Protection record, read once, concurrent
readers included. A write through it forgets what it changes, before and after the write, so a plan that follows our
own write of an object reads it again (plans record prior state for exact undo, and that state must be current),
unless the write says exactly what the object holds now (accountEnabled), which is then remembered instead.
The Sentinel incident is read once the same way, for the write-back's comment and update."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")
Key = tuple[str, str]


class ReadCache:
    """Reads by (kind, object id): one request per key until the key is forgotten. A failed read is not kept."""

    def __init__(self) -> None:
        self._reads: dict[Key, asyncio.Task[Any]] = {}

    async def read(self, key: Key, fetch: Callable[[], Awaitable[T]]) -> T:
        task = self._reads.get(key)
        if task is None:
            task = asyncio.ensure_future(fetch())
            self._reads[key] = task
            task.add_done_callback(lambda done: self._settled(key, done))
        # shield: one reader's time limit does not cancel the read for the others
        value: T = await asyncio.shield(task)
        return copy.deepcopy(value)  # callers get their own copy, as from a fresh read

    def _settled(self, key: Key, task: asyncio.Task[Any]) -> None:
        # exception() also marks the error retrieved, so a read nobody awaits any more logs no warning
        failed = task.cancelled() or task.exception() is not None
        if failed and self._reads.get(key) is task:
            del self._reads[key]

    def held(self, key: Key) -> Any | None:
        """A copy of what a finished read of `key` returned, or None."""
        task = self._reads.get(key)
        if task is None or not task.done() or task.cancelled() or task.exception() is not None:
            return None
        return copy.deepcopy(task.result())

    def remember(self, key: Key, value: Any) -> None:
        """`value` is what `key` holds now (our own write made it so): later readers get it without a request."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(copy.deepcopy(value))
        self._reads[key] = future  # type: ignore[assignment]

    def forget(self, keys: Iterable[Key]) -> None:
        for key in keys:
            self._reads.pop(key, None)


def _user(user_id: str) -> Key:
    return ("user", user_id.lower())


def _risky(user_id: str) -> Key:
    return ("riskyUser", user_id.lower())


class RunGraph:
    """The Graph adapter for one run invocation: users, memberships and risky users read through the cache; writes
    forget what they change. Anything else goes straight to the adapter."""

    def __init__(self, graph: Any, reads: ReadCache) -> None:
        self._graph = graph
        self._reads = reads

    def __getattr__(self, name: str) -> Any:
        return getattr(self._graph, name)

    async def get_user(self, user_id: str) -> dict[str, Any]:
        user: dict[str, Any] = await self._reads.read(_user(user_id), lambda: self._graph.get_user(user_id))
        return user

    async def list_memberships(self, user_id: str) -> list[dict[str, Any]]:
        # Our writes never change a membership: the list stays valid for the invocation.
        key = ("memberships", user_id.lower())
        found: list[dict[str, Any]] = await self._reads.read(key, lambda: self._graph.list_memberships(user_id))
        return found

    async def get_risky_user(self, user_id: str) -> dict[str, Any] | None:
        risky: dict[str, Any] | None = await self._reads.read(
            _risky(user_id), lambda: self._graph.get_risky_user(user_id)
        )
        return risky

    async def _write(self, keys: list[Key], write: Awaitable[T]) -> T:
        self._reads.forget(keys)
        try:
            return await write
        finally:
            self._reads.forget(keys)  # a read that began during the write may hold either state

    async def set_account_enabled(self, user_id: str, enabled: bool) -> dict[str, Any]:
        # The PATCH changes accountEnabled alone: the user read before it, with that field set, is the user now.
        # So the plans after it (revoke, confirm) need no second read of an object this run just wrote.
        read = self._reads.held(_user(user_id))
        result: dict[str, Any] = await self._write([_user(user_id)], self._graph.set_account_enabled(user_id, enabled))
        if isinstance(read, dict):
            self._reads.remember(_user(user_id), {**read, "accountEnabled": enabled})
        return result

    async def revoke_sessions(self, user_id: str) -> dict[str, Any]:
        # signInSessionsValidFromDateTime moves
        result: dict[str, Any] = await self._write([_user(user_id)], self._graph.revoke_sessions(user_id))
        return result

    async def confirm_compromised(self, user_ids: Iterable[str]) -> dict[str, Any]:
        ids = list(user_ids)
        result: dict[str, Any] = await self._write([_risky(u) for u in ids], self._graph.confirm_compromised(ids))
        return result

    async def dismiss_risk(self, user_ids: Iterable[str]) -> dict[str, Any]:
        ids = list(user_ids)
        result: dict[str, Any] = await self._write([_risky(u) for u in ids], self._graph.dismiss_risk(ids))
        return result


class RunSentinel:
    """The Sentinel adapter for one run invocation: the incident read once (the write-back's comment and update plan
    from one read); an update forgets it. A comment does not change the incident, and update_incident re-reads and
    re-applies if its etag went stale anyway."""

    def __init__(self, sentinel: Any, reads: ReadCache) -> None:
        self._sentinel = sentinel
        self._reads = reads

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sentinel, name)

    async def get_incident(self, arm_id: str) -> dict[str, Any]:
        key = ("incident", arm_id.lower())
        incident: dict[str, Any] = await self._reads.read(key, lambda: self._sentinel.get_incident(arm_id))
        return incident

    async def update_incident(self, arm_id: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        key = ("incident", arm_id.lower())
        self._reads.forget([key])
        try:
            updated: dict[str, Any] = await self._sentinel.update_incident(arm_id, *args, **kwargs)
            return updated
        finally:
            self._reads.forget([key])


class RunClients:
    """The Azure clients as one run invocation sees them: Graph and Sentinel through a fresh read cache, the rest
    unchanged."""

    def __init__(self, azure: Any) -> None:
        self._azure = azure
        self._graph: RunGraph | None = None
        self._sentinel: RunSentinel | None = None
        self._cache = ReadCache()

    @property
    def graph(self) -> RunGraph:
        if self._graph is None:  # built on first use, so a run without Graph builds no Graph client
            self._graph = RunGraph(self._azure.graph, self._cache)
        return self._graph

    @property
    def sentinel(self) -> RunSentinel:
        if self._sentinel is None:
            self._sentinel = RunSentinel(self._azure.sentinel, self._cache)
        return self._sentinel

    def __getattr__(self, name: str) -> Any:
        return getattr(self._azure, name)
