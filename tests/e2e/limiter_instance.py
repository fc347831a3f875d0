"""One simulated instance for test_shared_limits: its own process, its own limiter objects, the shared table.

    python -m tests.e2e.limiter_instance window|slots CONNECTION API BEGIN SECONDS ...
    python -m tests.e2e.limiter_instance hold CONNECTION API COUNT LEASE_S

BEGIN is the wall-clock time every instance starts at, so they overlap whatever their start-up took.

Prints one JSON document: the start times (window) or the (entered, left) intervals (slots) it saw."""

from __future__ import annotations

import asyncio
import json
import sys
import time

from shared.azure.shared_limits import LimitTable, SharedSlots, SharedWindow
from shared.azure.storage import StorageConnection


def tolerance(count: int, window_s: float) -> float:
    """As shared/azure/limits.py sizes it: 5% of a rate's spacing, 1% of a window."""
    return 0.05 * window_s if count == 1 else 0.01 * window_s


async def _until(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - time.time()))


async def window(table: LimitTable, api: str, span: tuple[float, float], count: int, window_s: float) -> None:
    limiter = SharedWindow(table, api, "test", count, window_s, tolerance_s=tolerance(count, window_s))
    starts: list[float] = []
    await table.ready()
    await _until(span[0])
    deadline = span[0] + span[1]

    async def caller() -> None:
        while time.time() < deadline:
            await limiter.acquire()
            starts.append(time.time())

    await asyncio.gather(*(caller() for _ in range(6)))
    print(json.dumps({"starts": starts, "reservations": limiter.reservations, "dropped": limiter.dropped}))


async def slots(table: LimitTable, api: str, span: tuple[float, float], count: int, busy_s: float) -> None:
    limiter = SharedSlots(table, api, "test", count)
    held: list[tuple[float, float]] = []
    await table.ready()
    await _until(span[0])
    deadline = span[0] + span[1]

    async def caller() -> None:
        while time.time() < deadline:
            async with limiter.hold():
                entered = time.time()
                await asyncio.sleep(busy_s)
                held.append((entered, time.time()))

    await asyncio.gather(*(caller() for _ in range(count + 2)))
    print(json.dumps({"held": held, "claims": limiter.claims}))


async def hold_forever(table: LimitTable, api: str, count: int, lease_s: float) -> None:
    """Takes every slot and never gives one back: the test kills this process while it holds them."""
    limiter = SharedSlots(table, api, "test", count, lease_s=lease_s)
    entered = 0

    async def holder() -> None:
        nonlocal entered
        async with limiter.hold():
            entered += 1
            if entered == count:
                print("holding", flush=True)
            await asyncio.sleep(3600)

    await asyncio.gather(*(holder() for _ in range(count)))


async def main(kind: str, connection: str, api: str, *numbers: str) -> None:
    table = LimitTable(StorageConnection(connection, None, None))
    values = [float(n) for n in numbers]
    try:
        if kind == "window":
            await window(table, api, (values[0], values[1]), int(values[2]), values[3])
        elif kind == "slots":
            await slots(table, api, (values[0], values[1]), int(values[2]), values[3])
        else:
            await hold_forever(table, api, int(values[0]), values[1])
    finally:
        await table.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
