"""The limiters shared through Table storage (shared/azure/shared_limits.py), against Azurite: separate processes,
each with its own limiter objects, stand for scaled-out instances sharing one tenant's budget."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from shared.azure.limits import Limits
from shared.azure.shared_limits import LimitTable, SharedSlots, SharedWindow
from shared.azure.storage import StorageConnection
from shared.settings import Settings
from tests.e2e.limiter_instance import tolerance

ROOT = Path(__file__).resolve().parents[2]
INSTANCES = 3


def _instances(azurite: str, kind: str, *args: float | str) -> list[dict[str, Any]]:
    """Runs INSTANCES limiter processes at once; their JSON reports."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.limiter_instance", kind, azurite, *map(str, args)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(INSTANCES)
    ]
    reports = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        reports.append(json.loads(out))
    return reports


def _most_in_any_window(starts: list[float], window_s: float) -> int:
    ordered = sorted(starts)
    most, first = 0, 0
    for last, start in enumerate(ordered):
        while start - ordered[first] >= window_s:
            first += 1
        most = max(most, last - first + 1)
    return most


# Spacings long enough that the lateness allowed (5% of a rate's spacing, 1% of a window) is 10 ms: on a loaded 2-core
# machine an event loop often wakes up later than a few ms, and each start dropped for it costs a round trip.
@pytest.mark.parametrize(("count", "window_s"), [(1, 0.2), (8, 1.0)], ids=["rate 5/s", "window 8 per second"])
def test_instances_together_never_exceed_the_limit_and_use_most_of_it(azurite: str, count: int, window_s: float):
    seconds = 4.0
    begin = time.time() + 3  # every instance has started and made its table client by then
    reports = _instances(azurite, "window", f"api-{uuid.uuid4().hex[:8]}", begin, seconds, count, window_s)
    every = [s for r in reports for s in r["starts"]]
    assert all(r["starts"] for r in reports), "every instance got starts"
    # Each start is used within the tolerance of its time, so a window shorter by that much never holds more than
    # `count`.
    assert _most_in_any_window(every, window_s - tolerance(count, window_s)) <= count
    allowed = count * (max(every) - min(every)) / window_s + count
    # Most of the budget is used, even on a loaded 2-core machine (a start that cannot be used on time is dropped).
    assert len(every) >= 0.6 * allowed, f"{len(every)} starts of {allowed:.0f} allowed"
    # The fast path: a round trip reserves several starts when callers wait.
    assert sum(r["reservations"] for r in reports) < 0.7 * len(every)


def test_concurrent_slots_across_instances_never_exceed_the_count(azurite: str):
    count, busy_s, seconds = 3, 0.05, 4.0
    begin = time.time() + 3
    reports = _instances(azurite, "slots", f"la-{uuid.uuid4().hex[:8]}", begin, seconds, count, busy_s)
    held = [tuple(h) for r in reports for h in r["held"]]
    events = sorted([(entered, 1) for entered, _ in held] + [(left, -1) for _, left in held])
    in_use = most = 0
    for _, change in events:
        in_use += change
        most = max(most, in_use)
    assert most <= count
    # The slots are kept busy: each hold costs a round trip or two besides its own work, and on a loaded 2-core
    # machine more.
    utilisation = sum(left - entered for entered, left in held) / (count * seconds)
    assert utilisation >= 0.4, f"slots busy {utilisation:.0%} of the time"
    assert sum(1 for r in reports if r["held"]) >= 2, "the slots went round the instances"


def _crash_while_holding(azurite: str, api: str, count: int, lease_s: float) -> float:
    """An instance takes every slot and is killed while it holds them; when it died."""
    holder = subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.limiter_instance", "hold", azurite, api, str(count), str(lease_s)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "holding", holder.stderr.read() if holder.stderr else ""
    holder.kill()
    holder.wait()
    return time.time()


async def test_a_crashed_holders_slots_free_themselves_when_their_lease_ends(azurite: str):
    api, count, lease_s = f"la-{uuid.uuid4().hex[:8]}", 2, 2.0
    killed_at = _crash_while_holding(azurite, api, count, lease_s)
    table = LimitTable(StorageConnection(azurite, None, None))
    slots = SharedSlots(table, api, "test", count, lease_s=lease_s)
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                async with slots.hold():
                    pass
        async with asyncio.timeout(10), slots.hold(), slots.hold():
            both_at = time.time()
        assert both_at - killed_at <= lease_s + 1.0, f"took {both_at - killed_at:.1f} s for a {lease_s} s lease"
    finally:
        await table.close()


async def test_a_live_holder_keeps_its_slot_past_the_lease_length(azurite: str):
    api, lease_s = f"la-{uuid.uuid4().hex[:8]}", 1.0
    tables = [LimitTable(StorageConnection(azurite, None, None)) for _ in range(2)]
    holder, other = (SharedSlots(t, api, "test", 1, lease_s=lease_s) for t in tables)
    try:
        async with holder.hold():
            with pytest.raises(TimeoutError):  # renewed every third of the lease, it never runs out under the holder
                async with asyncio.timeout(3 * lease_s), other.hold():
                    pass
        async with asyncio.timeout(2), other.hold():
            pass  # given back, it is free at once
    finally:
        for table in tables:
            await table.close()


async def test_a_429_holds_back_every_instance_until_retry_after(azurite: str):
    api = f"ip-{uuid.uuid4().hex[:8]}"
    tables = [LimitTable(StorageConnection(azurite, None, None)) for _ in range(2)]
    one, other = (SharedWindow(t, api, "test", 1, 0.05, 0.0025) for t in tables)
    try:
        await one.acquire()
        await other.acquire()  # the other instance has its own reservation state already
        throttled_at = time.time()
        await one.throttled(1.0)
        await other.acquire()
        assert time.time() >= throttled_at + 1.0
        throttled_at = time.time()
        await other.throttled(None)  # no Retry-After (Identity Protection): one spacing
        await one.acquire()
        assert time.time() >= throttled_at + 0.05
    finally:
        for table in tables:
            await table.close()


def test_the_limiters_are_shared_when_storage_is_configured(azurite: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AzureWebJobsStorage", azurite)
    assert isinstance(Limits.from_settings(Settings()).identity_protection, SharedWindow)
    assert isinstance(Limits.from_settings(Settings(limiter="shared")).loganalytics, SharedSlots)
    assert not isinstance(Limits.from_settings(Settings(limiter="process")).identity_protection, SharedWindow)
    monkeypatch.delenv("AzureWebJobsStorage")
    for name in [k for k in os.environ if k.startswith("AzureWebJobsStorage")]:
        monkeypatch.delenv(name)
    assert not isinstance(Limits.from_settings(Settings()).identity_protection, SharedWindow)
    with pytest.raises(ValueError, match="AzureWebJobsStorage"):
        Limits.from_settings(Settings(limiter="shared"))
