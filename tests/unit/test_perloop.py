"""shared.perloop: one value per running event loop (clients and asyncio primitives belong to their loop)."""

from __future__ import annotations

import asyncio

from shared.perloop import PerLoop


def test_each_loop_gets_its_own_value_and_a_closed_loops_value_is_never_handed_out() -> None:
    cache: PerLoop[object] = PerLoop()

    async def value() -> object:
        first = cache.get(object)
        assert cache.get(object) is first and cache.current() is first
        return first

    one, two = asyncio.run(value()), asyncio.run(value())
    assert one is not two
    assert len(cache._values) == 1  # the first loop closed: its entry went when the second loop put its own


async def test_concurrent_callers_on_one_loop_share_the_first_ones_value() -> None:
    cache: PerLoop[list[int]] = PerLoop()
    made: list[int] = []

    async def make() -> list[int]:
        made.append(1)
        await asyncio.sleep(0.01)  # a slow start-up (storage tables being created): others must wait, not make more
        return made

    values = await asyncio.gather(*(cache.aget(make) for _ in range(5)))
    assert made == [1] and all(v is values[0] for v in values)
    assert cache.current() is values[0]
