"""The Identity Protection limiter (1 request/s per tenant) measured on the emulated cloud's request log: concurrent
calls, retries and the real service's limit; and the rest of Graph left unthrottled."""

from __future__ import annotations

import asyncio
import gc
import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest

from shared.actions import executor
from tests.actions.conftest import ADELE, ALEX, LEE, MEGAN, ContextFactory
from tests.conftest import CloudHandle

DIEGO = "1c9f2b8e-4a3d-4e6f-8b1c-2d3e4f5a6b06"
NESTOR = "1c9f2b8e-4a3d-4e6f-8b1c-2d3e4f5a6b07"
IDENTITY_PROTECTION = "/v1.0/identityProtection/*"
# The limiter spaces the moments requests leave the client; the log stamps their arrival. With the emulator in this
# process the two differ by milliseconds, and now and then by more (the GIL, a garbage collection), which shortens
# one gap and lengthens the next: per gap allow 0.2 s, over the burst only 2 %. Without the limiter the gaps are a
# few milliseconds.
SPACING_TOLERANCE_S = 0.2
RATE_TOLERANCE = 0.02


@pytest.fixture(autouse=True)
def frozen_heap() -> Iterator[None]:
    """A full collection of this test session's heap takes ~0.1 s here and stops the client and the emulator alike;
    landing between the limiter and the wire it would delay one request. Freezing the objects that exist before the
    test keeps collections short without turning them off."""
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


def identity_protection_times(cloud: CloudHandle) -> list[float]:
    return sorted(r["time"] for r in cloud.requests(service="graph", path=IDENTITY_PROTECTION))


def gaps(times: list[float]) -> list[float]:
    return [later - earlier for earlier, later in itertools.pairwise(times)]


def measured_rate(times: list[float]) -> float:
    return (len(times) - 1) / (times[-1] - times[0])


async def warm_up(ctx: Any) -> None:
    """One Identity Protection call before the burst. Without it the burst's first request leaves while the other
    calls are still being built, and with the emulator in this process (one GIL) it reaches the server up to ~0.2 s
    late, which shortens the gap to the next request although the client spaced them 1 s apart. After it, every
    call of the burst is built and waiting on the limiter before the first one is sent."""
    finding = await executor.enrich(ctx, "identity.get_risky_user", {"aadUserId": MEGAN})
    assert finding.ok, finding.error


CALLS = (
    *(("identity.get_risky_user", user) for user in (ADELE, ALEX, DIEGO)),
    *(("identity.list_risk_detections", user) for user in (ADELE, ALEX, NESTOR)),
)


def identity_protection_calls(ctx: Any, count: int = len(CALLS)) -> list[Any]:
    """Risky-user reads and detection lists, to be started at once."""
    return [executor.enrich(ctx, name, {"aadUserId": user}) for name, user in CALLS[:count]]


async def test_limiter_holds_identity_protection_at_one_request_per_second(
    make_context: ContextFactory, cloud: CloudHandle
):
    ctx = make_context(identity_protection_rps=1.0)
    await warm_up(ctx)
    findings = await asyncio.gather(*identity_protection_calls(ctx))
    assert all(f.ok for f in findings), [f.error for f in findings if not f.ok]
    times = identity_protection_times(cloud)
    assert len(times) == 7
    assert min(gaps(times)) >= 1.0 - SPACING_TOLERANCE_S, gaps(times)
    rate = measured_rate(times)
    assert rate <= 1.0 + RATE_TOLERANCE
    print(
        f"\nIdentity Protection: {len(times)} requests, gaps {[round(g, 3) for g in gaps(times)]} s, {rate:.3f} req/s"
    )


async def test_retries_wait_for_the_limiter_too(make_context: ContextFactory, cloud: CloudHandle):
    # Identity Protection's 429s carry no Retry-After, so the SDK's own backoff (0.25 s + up to 1 s of jitter) would
    # resend sooner than 1 s; the limiter sits after the RetryHandler and spaces every attempt.
    ctx = make_context(identity_protection_rps=1.0)
    await warm_up(ctx)
    cloud.admin.post(
        "/faults", json={"match": "GET /v1.0/identityProtection/riskyUsers/*", "status": 429, "count": 2}
    ).raise_for_status()
    users = (ADELE, ALEX, DIEGO, NESTOR)
    findings = await asyncio.gather(*(executor.enrich(ctx, "identity.get_risky_user", {"aadUserId": u}) for u in users))
    assert all(f.ok for f in findings), [f.error for f in findings if not f.ok]
    logged = sorted(cloud.requests(service="graph", path=IDENTITY_PROTECTION), key=lambda r: r["time"])
    assert sorted(r["status"] for r in logged) == [200, 200, 200, 200, 404, 429, 429]
    times = [r["time"] for r in logged]
    assert min(gaps(times)) >= 1.0 - SPACING_TOLERANCE_S, gaps(times)
    assert measured_rate(times) <= 1.0 + RATE_TOLERANCE


async def test_under_the_real_limit_no_call_is_lost(make_context: ContextFactory, cloud: CloudHandle):
    # The emulator enforces Microsoft's limit (1 request/s per tenant, 429 without Retry-After). At exactly 1/s the
    # arrival jitter of a few milliseconds gets some requests rejected; they are retried and every enrichment
    # still succeeds.
    cloud.admin.post("/limits", json={"preset": "real"}).raise_for_status()
    ctx = make_context(identity_protection_rps=1.0)
    await warm_up(ctx)
    findings = await asyncio.gather(*identity_protection_calls(ctx, 3))
    assert all(f.ok for f in findings), [f.error for f in findings if not f.ok]
    statuses = [r["status"] for r in cloud.requests(service="graph", path=IDENTITY_PROTECTION)]
    assert statuses.count(200) == 3 and statuses.count(404) == 1
    print(f"\nat 1.0/s under the real limit: {statuses.count(429)} of {len(statuses)} requests rejected")


async def test_a_margin_below_the_real_limit_avoids_every_rejection(make_context: ContextFactory, cloud: CloudHandle):
    cloud.admin.post("/limits", json={"preset": "real"}).raise_for_status()
    ctx = make_context(identity_protection_rps=0.8)  # the margin docs/reference/service-limits.md explains
    await warm_up(ctx)
    findings = await asyncio.gather(*identity_protection_calls(ctx, 3))
    assert all(f.ok for f in findings), [f.error for f in findings if not f.ok]
    statuses = [r["status"] for r in cloud.requests(service="graph", path=IDENTITY_PROTECTION)]
    assert statuses == [404, 200, 200, 200]


async def test_the_limiter_leaves_other_graph_calls_alone(make_context: ContextFactory, cloud: CloudHandle):
    ctx = make_context(identity_protection_rps=1.0)
    started = time.perf_counter()
    users = (ADELE, ALEX, LEE, MEGAN, DIEGO, NESTOR)
    findings = await asyncio.gather(*(executor.enrich(ctx, "entra.get_user", {"aadUserId": u}) for u in users))
    elapsed = time.perf_counter() - started
    assert all(f.ok for f in findings), [f.error for f in findings if not f.ok]
    assert len(cloud.requests(service="graph", path="/v1.0/users/*")) == 12  # profile + memberships each
    assert elapsed < 1.0 + 2.0  # 12 requests at 1/s would take 11 s; allow for the first token and SDK import
