"""Injected faults and enforced rate limits, applied by the pipeline (app.py) to every non-admin request.

Faults (POST /_admin/faults) add latency and/or answer with an error instead of (or, with "after": true, after) the
real handler. Rate limits (POST /_admin/limits) reproduce the real services' throttling: sliding windows, token
buckets and concurrency caps, each answering with that service's own 429. "timeScale" speeds time up for limits so a
5-minute window can be exercised in seconds. Both survive a tenant reset; DELETE clears them."""

from __future__ import annotations

import asyncio
import fnmatch
import itertools
import math
import random
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from starlette.responses import Response

from local.cloud.errors import error_for, retry_after_header, throttled


class ControlError(ValueError):
    """A fault or limit definition that cannot be used; the admin API answers 400 with this message."""


# ---------------------------------------------------------------------------------------------------- matching


@dataclass(frozen=True)
class Match:
    """Which requests a fault or limit applies to. `glob` is tried on the path and on the route pattern."""

    methods: frozenset[str] = frozenset()  # empty = any method
    glob: str = "*"
    service: str = "*"
    regex: re.Pattern[str] | None = None  # presets need "this segment, not deeper", which a glob cannot say

    def matches(self, method: str, service: str, path: str, pattern: str) -> bool:
        if self.methods and method not in self.methods:
            return False
        if self.service != "*" and service != self.service:
            return False
        if self.regex is not None:
            return self.regex.search(path) is not None
        if self.glob == "*":
            return True
        compiled = _glob(self.glob)
        return compiled.match(path) is not None or (bool(pattern) and compiled.match(pattern) is not None)

    def describe(self) -> dict[str, str]:
        return {
            "method": ",".join(sorted(self.methods)) or "*",
            "path": self.regex.pattern if self.regex else self.glob,
            "service": self.service,
        }


def _methods(text: str) -> frozenset[str]:
    """'GET', 'get,head' or '*'."""
    names = {m.strip().upper() for m in text.split(",") if m.strip()}
    return frozenset() if not names or "*" in names else frozenset(names)


_GLOBS: dict[str, re.Pattern[str]] = {}


def _glob(text: str) -> re.Pattern[str]:
    compiled = _GLOBS.get(text)
    if compiled is None:
        compiled = _GLOBS[text] = re.compile(fnmatch.translate(text), re.IGNORECASE)
    return compiled


def parse_match(spec: Any) -> Match:
    """ "<METHOD> <glob>", "<glob>", or {"method", "path", "service"}."""
    if spec is None:
        return Match()
    if isinstance(spec, str):
        words = spec.split(None, 1)
        if not words:
            return Match()
        if len(words) == 2:
            return Match(methods=_methods(words[0]), glob=words[1].strip())
        if words[0].startswith("/") or words[0] == "*":
            return Match(glob=words[0])
        return Match(methods=_methods(words[0]))
    if isinstance(spec, dict):
        unknown = set(spec) - {"method", "path", "pattern", "service"}
        if unknown:
            raise ControlError(f"unknown match field(s): {', '.join(sorted(unknown))}")
        return Match(
            methods=_methods(str(spec.get("method") or "*")),
            glob=str(spec.get("path") or spec.get("pattern") or "*"),
            service=str(spec.get("service") or "*").lower(),
        )
    raise ControlError("match must be a string like 'GET /v1.0/users/*' or an object {method, path, service}")


def _number(spec: dict[str, Any], key: str, default: float | None = None, *, minimum: float = 0) -> float | None:
    value = spec.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise ControlError(f"'{key}' must be a number >= {minimum}")
    return float(value)


# ---------------------------------------------------------------------------------------------------- faults


@dataclass
class Latency:
    fixed_ms: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None

    @classmethod
    def parse(cls, spec: Any) -> Latency | None:
        if spec is None:
            return None
        if isinstance(spec, int | float) and not isinstance(spec, bool):
            return cls(fixed_ms=float(spec))
        if not isinstance(spec, dict):
            raise ControlError("latency must be {'fixedMs': ms} or {'distribution': {'p50': ms, 'p99': ms}}")
        if "fixedMs" in spec:
            return cls(fixed_ms=_number(spec, "fixedMs"))
        dist = spec.get("distribution", spec)
        if not isinstance(dist, dict) or "p50" not in dist or "p99" not in dist:
            raise ControlError("latency must be {'fixedMs': ms} or {'distribution': {'p50': ms, 'p99': ms}}")
        p50, p99 = _number(dist, "p50"), _number(dist, "p99")
        assert p50 is not None and p99 is not None
        if p99 < p50:
            raise ControlError("latency p99 must be >= p50")
        return cls(p50_ms=p50, p99_ms=p99)

    def sample_ms(self, rng: random.Random) -> float:
        if self.fixed_ms is not None:
            return self.fixed_ms
        assert self.p50_ms is not None and self.p99_ms is not None
        if self.p50_ms <= 0:
            return 0.0
        # Log-normal with the given median and 99th percentile (z(0.99) = 2.3263): long-tailed like real latency.
        sigma = math.log(self.p99_ms / self.p50_ms) / 2.3263 if self.p99_ms > self.p50_ms else 0.0
        return rng.lognormvariate(math.log(self.p50_ms), sigma)

    def describe(self) -> dict[str, Any]:
        if self.fixed_ms is not None:
            return {"fixedMs": self.fixed_ms}
        return {"distribution": {"p50": self.p50_ms, "p99": self.p99_ms}}


_DEFAULT_CODES = {500: "InternalServerError", 502: "BadGateway", 503: "ServiceUnavailable", 504: "GatewayTimeout"}


@dataclass
class Fault:
    id: str
    match: Match
    latency: Latency | None
    error_rate: float
    status: int | None
    code: str | None
    message: str | None
    retry_after: float | None
    remaining: int | None  # how many more times it fires; None = until deleted
    after: bool  # answer with the error after the handler ran (the write happened, the response was lost)
    fired: int = 0

    @classmethod
    def parse(cls, spec: Any, fault_id: str) -> Fault:
        if not isinstance(spec, dict):
            raise ControlError("a fault must be a JSON object")
        known = {"match", "latency", "errorRate", "status", "code", "message", "retryAfter", "count", "after", "id"}
        unknown = set(spec) - known
        if unknown:
            raise ControlError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        status = spec.get("status")
        if status is not None and (not isinstance(status, int) or not 400 <= status <= 599):
            raise ControlError("'status' must be an HTTP error status (400-599)")
        error_rate = _number(spec, "errorRate", 1.0 if status is not None else 0.0)
        assert error_rate is not None
        if error_rate > 1:
            raise ControlError("'errorRate' must be between 0 and 1")
        if error_rate > 0 and status is None:
            status = 500
        count = spec.get("count")
        if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
            raise ControlError("'count' must be a positive integer")
        latency = Latency.parse(spec.get("latency"))
        if latency is None and status is None:
            raise ControlError("a fault needs 'latency' and/or 'status'/'errorRate'")
        return cls(
            id=str(spec.get("id") or fault_id),
            match=parse_match(spec.get("match")),
            latency=latency,
            error_rate=error_rate,
            status=status,
            code=spec.get("code"),
            message=spec.get("message"),
            retry_after=_number(spec, "retryAfter"),
            remaining=count,
            after=bool(spec.get("after", False)),
        )

    def response(self, service: str) -> Response:
        assert self.status is not None
        if self.status == 429:
            return throttled(service, self.retry_after, self.code, self.message)
        code = self.code or _DEFAULT_CODES.get(self.status, "InjectedFault")
        message = self.message or f"Injected fault {self.id}: HTTP {self.status}."
        return error_for(service, self.status, code, message, retry_after_header(self.retry_after) or None)

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "match": self.match.describe(),
            "latency": self.latency.describe() if self.latency else None,
            "errorRate": self.error_rate,
            "status": self.status,
            "code": self.code,
            "retryAfter": self.retry_after,
            "count": self.remaining,
            "after": self.after,
            "fired": self.fired,
        }


# ---------------------------------------------------------------------------------------------------- limits


_SUBSCRIPTION = re.compile(r"^/subscriptions/([^/]+)", re.IGNORECASE)


def _subscription_of(path: str) -> str:
    m = _SUBSCRIPTION.match(path)
    return m.group(1).lower() if m else ""


@dataclass
class RequestInfo:
    method: str
    service: str
    path: str
    pattern: str
    query: str


CostFunction = Callable[[RequestInfo], int]


@dataclass
class Limit:
    """Common part of every limit: what it matches, how it keys, how its 429 looks."""

    name: str
    match: Match
    per_subscription: bool
    send_retry_after: bool
    code: str | None
    message: str  # may use {subscription}, {seconds}, {limit}
    scale: float
    remaining_header: str | None = None  # e.g. x-ms-ratelimit-remaining-subscription-reads
    admitted: int = 0
    rejected: int = 0

    def key(self, request: RequestInfo) -> str:
        return _subscription_of(request.path) if self.per_subscription else ""

    def reject(self, request: RequestInfo, retry_after: float) -> Response:
        self.rejected += 1
        text = self.message.format(
            subscription=self.key(request) or "-", seconds=max(1, math.ceil(retry_after)), limit=self.name
        )
        return throttled(request.service, retry_after if self.send_retry_after else None, self.code, text)

    def base_description(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "match": self.match.describe(),
            "perSubscription": self.per_subscription,
            "retryAfter": self.send_retry_after,
            "timeScale": self.scale,
            "admitted": self.admitted,
            "rejected": self.rejected,
        }


@dataclass
class WindowLimit(Limit):
    """At most `requests` in any sliding window of `seconds` (scaled)."""

    requests: int = 1
    seconds: float = 1.0
    history: dict[str, deque[float]] = field(default_factory=dict)

    @property
    def window(self) -> float:
        return self.seconds / self.scale

    def wait(self, request: RequestInfo, now: float) -> float | None:
        seen = self.history.setdefault(self.key(request), deque())
        while seen and seen[0] <= now - self.window:
            seen.popleft()
        if len(seen) < self.requests:
            return None
        return seen[0] + self.window - now

    def consume(self, request: RequestInfo, now: float) -> int:
        seen = self.history.setdefault(self.key(request), deque())
        seen.append(now)
        return self.requests - len(seen)

    def describe(self) -> dict[str, Any]:
        return {**self.base_description(), "kind": "window", "requests": self.requests, "seconds": self.seconds}


@dataclass
class BucketLimit(Limit):
    """Token bucket of `capacity`, refilled at `refill_per_second` (scaled); a request costs `cost(request)`."""

    capacity: float = 1.0
    refill_per_second: float = 1.0
    cost: CostFunction | None = None
    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # key -> (tokens, at)

    def _tokens(self, key: str, now: float) -> float:
        tokens, at = self.buckets.get(key, (self.capacity, now))
        return min(self.capacity, tokens + (now - at) * self.refill_per_second * self.scale)

    def _cost(self, request: RequestInfo) -> int:
        return self.cost(request) if self.cost else 1

    def wait(self, request: RequestInfo, now: float) -> float | None:
        tokens, cost = self._tokens(self.key(request), now), self._cost(request)
        if tokens >= cost:
            return None
        return (cost - tokens) / (self.refill_per_second * self.scale)

    def consume(self, request: RequestInfo, now: float) -> int:
        key = self.key(request)
        tokens = self._tokens(key, now) - self._cost(request)
        self.buckets[key] = (tokens, now)
        return int(tokens)

    def describe(self) -> dict[str, Any]:
        return {
            **self.base_description(),
            "kind": "bucket",
            "capacity": self.capacity,
            "refillPerSecond": self.refill_per_second,
        }


@dataclass
class ConcurrencyLimit(Limit):
    """At most `concurrent` requests in flight; up to `queue` more wait (for `queue_timeout` scaled seconds)."""

    concurrent: int = 1
    queue: int = 0
    queue_timeout: float = 0.0
    in_flight: int = 0
    waiting: deque[asyncio.Future[None]] = field(default_factory=deque)

    def release(self) -> None:
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)  # hand the slot over; in_flight stays the same
                return
        self.in_flight -= 1

    async def acquire(self, request: RequestInfo) -> Response | None:
        if self.in_flight < self.concurrent:
            self.in_flight += 1
            return None
        timeout = self.queue_timeout / self.scale
        if len(self.waiting) >= self.queue or timeout <= 0:
            return self.reject(request, max(timeout, 1.0))
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except TimeoutError:
            if waiter.done():  # the slot arrived just as the wait ran out: take it
                return None
            waiter.cancel()
            return self.reject(request, timeout)
        except asyncio.CancelledError:  # the client went away while queued: never strand a handed-over slot
            if waiter.done() and not waiter.cancelled():
                self.release()
            else:
                waiter.cancel()
            raise
        return None

    def describe(self) -> dict[str, Any]:
        return {
            **self.base_description(),
            "kind": "concurrency",
            "concurrent": self.concurrent,
            "queue": self.queue,
            "queueTimeoutSeconds": self.queue_timeout,
            "inFlight": self.in_flight,
        }


def graph_resource_units(request: RequestInfo) -> int:
    """Identity & access cost model: GET /users costs 2, other GETs 1; $select -1, $expand +1, $top < 20 -1; min 1."""
    if request.method != "GET":
        return 1
    cost = 2 if request.path.rstrip("/").lower() == "/v1.0/users" else 1
    query = {k.lower(): v for k, v in parse_qs(request.query).items()}
    if "$select" in query:
        cost -= 1
    if "$expand" in query:
        cost += 1
    top = query.get("$top", [""])[0]
    if top.isdigit() and int(top) < 20:
        cost -= 1
    return max(1, cost)


_IDENTITY_PROTECTION = re.compile(r"^/v1\.0/identityProtection/", re.IGNORECASE)
_IDENTITY_ACCESS = re.compile(r"^/v1\.0/(users|groups|directoryRoles|directoryObjects)(/|$)", re.IGNORECASE)
_INCIDENT = (
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.OperationalInsights/workspaces/[^/]+"
    r"/providers/Microsoft\.SecurityInsights/incidents/[^/]+"
)
_SENTINEL_INCIDENT = re.compile(_INCIDENT + "/?$", re.IGNORECASE)
_SENTINEL_COMMENT = re.compile(_INCIDENT + "/comments/[^/]+/?$", re.IGNORECASE)
_SENTINEL_RELATED = re.compile(_INCIDENT + "/(alerts|entities|comments|relations|bookmarks)/?$", re.IGNORECASE)
_ARM = re.compile(r"^/subscriptions/", re.IGNORECASE)
_NETWORK = re.compile(r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Network/", re.IGNORECASE)
_LOG_QUERY = re.compile(r"^/v1/", re.IGNORECASE)

_ARM_MESSAGE = (
    "Number of '{kind}' requests for subscription '{{subscription}}' actor 'riposte' exceeded. Please try again after "
    "'{{seconds}}' seconds after additional tokens are available. Refer to https://aka.ms/arm-throttling"
)
_SENTINEL_MESSAGE = (
    "Rate limit exceeded for '{limit}' in subscription '{subscription}'. Please try again after '{seconds}' seconds."
)


def real_limits(scale: float) -> list[Limit]:
    """Microsoft's documented limits (docs/reference/service-limits.md), with time sped up by `scale`."""
    return [
        *_graph_limits(scale),
        *_sentinel_limits(scale),
        *_log_analytics_limits(scale),
        *_network_limits(scale),
        *_arm_limits(scale),
    ]


def _window(scale: float, name: str, match: Match, requests: int, seconds: float, **kw: Any) -> WindowLimit:
    return WindowLimit(name=name, match=match, requests=requests, seconds=seconds, scale=scale, **kw)


def _on(pattern: re.Pattern[str], *verbs: str) -> Match:
    return Match(methods=frozenset(verbs), regex=pattern)


def _graph_limits(scale: float) -> list[Limit]:
    return [
        # Identity Protection: 1 request/s per tenant for all apps; its 429s carry no Retry-After.
        _window(
            scale,
            "graph-identity-protection",
            _on(_IDENTITY_PROTECTION),
            1,
            1.0,
            per_subscription=False,
            send_retry_after=False,
            code="TooManyRequests",
            message="Too many requests.",
        ),
        # Identity & access: resource units (3,500 RU / 10 s for a tenant under 50 users) and the write quota.
        BucketLimit(
            name="graph-identity-access-ru",
            match=_on(_IDENTITY_ACCESS),
            capacity=3500,
            refill_per_second=350,
            cost=graph_resource_units,
            scale=scale,
            per_subscription=False,
            send_retry_after=True,
            code="TooManyRequests",
            message="Please retry again later.",
        ),
        _window(
            scale,
            "graph-identity-writes",
            _on(_IDENTITY_ACCESS, "POST", "PATCH", "PUT", "DELETE"),
            3000,
            150.0,
            per_subscription=False,
            send_retry_after=True,
            code="TooManyRequests",
            message="Please retry again later.",
        ),
    ]


def _sentinel_limits(scale: float) -> list[Limit]:
    return [
        # Sentinel: 75 incident PUTs and 75 comment PUTs per 5 minutes; 100 reads of an incident's related lists.
        _window(
            scale,
            "sentinel-incident-put",
            _on(_SENTINEL_INCIDENT, "PUT"),
            75,
            300.0,
            per_subscription=True,
            send_retry_after=True,
            code="TooManyRequests",
            message=_SENTINEL_MESSAGE,
        ),
        _window(
            scale,
            "sentinel-comment-put",
            _on(_SENTINEL_COMMENT, "PUT"),
            75,
            300.0,
            per_subscription=True,
            send_retry_after=True,
            code="TooManyRequests",
            message=_SENTINEL_MESSAGE,
        ),
        _window(
            scale,
            "sentinel-incident-lists",
            _on(_SENTINEL_RELATED, "GET", "POST"),
            100,
            300.0,
            per_subscription=True,
            send_retry_after=True,
            code="TooManyRequests",
            message=_SENTINEL_MESSAGE,
        ),
    ]


def _log_analytics_limits(scale: float) -> list[Limit]:
    return [
        # Log Analytics: 5 concurrent queries per user (queue of 200, 3 minutes), 200 queries per 30 s.
        ConcurrencyLimit(
            name="loganalytics-concurrency",
            match=_on(_LOG_QUERY, "GET", "POST"),
            concurrent=5,
            queue=200,
            queue_timeout=180.0,
            scale=scale,
            per_subscription=False,
            send_retry_after=True,
            code="ThrottledError",
            message="Too many concurrent requests. Please try again later.",
        ),
        _window(
            scale,
            "loganalytics-rate",
            _on(_LOG_QUERY, "GET", "POST"),
            200,
            30.0,
            per_subscription=False,
            send_retry_after=True,
            code="ThrottledError",
            message="Your request rate is too high: 200 queries per 30 seconds. Retry after {seconds} seconds.",
        ),
    ]


def _network_limits(scale: float) -> list[Limit]:
    return [
        # Microsoft.Network resource provider: 1,000 PUT/DELETE per 5 minutes per subscription.
        _window(
            scale,
            "network-writes",
            _on(_NETWORK, "PUT", "DELETE"),
            1000,
            300.0,
            per_subscription=True,
            send_retry_after=True,
            code="ResourceRequestsThrottled",
            message="Number of write requests for subscription '{subscription}' and provider 'Microsoft.Network' "
            "exceeded the limit of '1000' for time interval '00:05:00'. Please try again after '{seconds}' seconds.",
        ),
    ]


def _arm_limits(scale: float) -> list[Limit]:
    """ARM's per-subscription token buckets (reads 250 refilling 25/s, writes and deletes 200 refilling 10/s)."""
    limits: list[Limit] = []
    for kind, verbs, capacity, refill in (
        ("reads", ("GET", "HEAD"), 250, 25),
        ("writes", ("PUT", "PATCH", "POST"), 200, 10),
        ("deletes", ("DELETE",), 200, 10),
    ):
        limits.append(
            BucketLimit(
                name=f"arm-{kind}",
                match=_on(_ARM, *verbs),
                capacity=capacity,
                refill_per_second=refill,
                scale=scale,
                per_subscription=True,
                send_retry_after=True,
                code="SubscriptionRequestsThrottled",
                message=_ARM_MESSAGE.format(kind=kind.rstrip("s")),
                remaining_header=f"x-ms-ratelimit-remaining-subscription-{kind}",
            )
        )
    return limits


def parse_limit(spec: Any, scale: float, default_name: str) -> Limit:
    """A custom limit: {"match", "requests"+"perSeconds" | "bucket": {capacity, refillPerSecond} |
    "concurrent" (+ "queue", "queueTimeoutSeconds"), "perSubscription", "retryAfter", "code", "message", "name"}."""
    if not isinstance(spec, dict):
        raise ControlError("a limit must be a JSON object")
    known = {
        "name",
        "match",
        "requests",
        "perSeconds",
        "bucket",
        "concurrent",
        "queue",
        "queueTimeoutSeconds",
        "perSubscription",
        "retryAfter",
        "code",
        "message",
    }
    unknown = set(spec) - known
    if unknown:
        raise ControlError(f"unknown limit field(s): {', '.join(sorted(unknown))}")
    common: dict[str, Any] = {
        "name": str(spec.get("name") or default_name),
        "match": parse_match(spec.get("match")),
        "per_subscription": bool(spec.get("perSubscription", False)),
        "send_retry_after": bool(spec.get("retryAfter", True)),
        "code": spec.get("code"),
        "message": str(spec.get("message") or "Rate limit '{limit}' exceeded. Retry after {seconds} seconds."),
        "scale": scale,
    }
    if "requests" in spec:
        requests, seconds = _number(spec, "requests", minimum=1), _number(spec, "perSeconds", 1.0, minimum=0.001)
        assert requests is not None and seconds is not None
        return WindowLimit(**common, requests=int(requests), seconds=seconds)
    if "bucket" in spec:
        bucket = spec["bucket"]
        if not isinstance(bucket, dict):
            raise ControlError("'bucket' must be {'capacity': n, 'refillPerSecond': r}")
        capacity = _number(bucket, "capacity", minimum=1)
        refill = _number(bucket, "refillPerSecond", minimum=0.001)
        if capacity is None or refill is None:
            raise ControlError("'bucket' needs 'capacity' and 'refillPerSecond'")
        return BucketLimit(**common, capacity=capacity, refill_per_second=refill)
    if "concurrent" in spec:
        concurrent = _number(spec, "concurrent", minimum=1)
        queue = _number(spec, "queue", 0)
        timeout = _number(spec, "queueTimeoutSeconds", 0)
        assert concurrent is not None and queue is not None and timeout is not None
        return ConcurrencyLimit(**common, concurrent=int(concurrent), queue=int(queue), queue_timeout=timeout)
    raise ControlError("a limit needs 'requests' (+ 'perSeconds'), 'bucket' or 'concurrent'")


# ---------------------------------------------------------------------------------------------------- pipeline


@dataclass
class Admission:
    """What the pipeline does with one request: answer `rejection` now, or run the handler, add `headers`, replace
    the response with `after` if set, and call release() when done."""

    rejection: Response | None = None
    after: Response | None = None
    headers: dict[str, str] = field(default_factory=dict)
    releases: list[Callable[[], None]] = field(default_factory=list)

    def release(self) -> None:
        for release in self.releases:
            release()
        self.releases.clear()


_ADMIT_ALL = Admission()


class Controls:
    def __init__(self, seed: int | None = None) -> None:
        self.faults: list[Fault] = []
        self.limits: list[Limit] = []
        self.rng = random.Random(seed)
        self._ids = itertools.count(1)

    # ---- admin operations
    def add_faults(self, spec: Any) -> list[Fault]:
        specs = spec if isinstance(spec, list) else [spec]
        added = [Fault.parse(s, f"fault-{next(self._ids)}") for s in specs]
        self.faults.extend(added)
        return added

    def clear_faults(self) -> None:
        self.faults.clear()

    def add_limits(self, spec: Any) -> list[Limit]:
        if not isinstance(spec, dict):
            raise ControlError("limits must be a JSON object: {'preset': 'real', 'timeScale': 1, 'limits': [...]}")
        unknown = set(spec) - {"preset", "timeScale", "limits"}
        if unknown:
            raise ControlError(f"unknown field(s): {', '.join(sorted(unknown))}")
        scale = _number(spec, "timeScale", 1.0, minimum=0.001)
        assert scale is not None
        added: list[Limit] = []
        preset = spec.get("preset")
        if preset is not None:
            if preset != "real":
                raise ControlError(f"unknown preset '{preset}' (known: real)")
            added += real_limits(scale)
        custom = spec.get("limits") or []
        if not isinstance(custom, list):
            raise ControlError("'limits' must be a list")
        added += [parse_limit(s, scale, f"limit-{next(self._ids)}") for s in custom]
        if not added:
            raise ControlError("nothing to add: give 'preset' and/or 'limits'")
        names = {limit.name for limit in added}
        self.limits = [limit for limit in self.limits if limit.name not in names] + added  # same name replaces
        return added

    def clear_limits(self) -> None:
        self.limits.clear()

    @property
    def active(self) -> bool:
        return bool(self.faults or self.limits)

    # ---- the pipeline step
    async def admit(self, *, pattern: str, service: str, method: str, path: str, query: str = "") -> Admission:
        if not self.faults and not self.limits:
            return _ADMIT_ALL
        request = RequestInfo(method=method, service=service, path=path, pattern=pattern, query=query)
        admission = Admission()
        try:
            if self.limits:
                rejection = await self._apply_limits(request, admission)
                if rejection is not None:
                    admission.release()
                    admission.rejection = rejection
                    return admission
            await self._apply_faults(request, admission)
        except BaseException:  # cancelled mid-way (client gone): give back what was taken
            admission.release()
            raise
        return admission

    async def _apply_faults(self, request: RequestInfo, admission: Admission) -> None:
        method, service, path, pattern = request.method, request.service, request.path, request.pattern
        for fault in list(self.faults):
            if fault.remaining == 0 or not fault.match.matches(method, service, path, pattern):
                continue
            fails = fault.status is not None and self.rng.random() < fault.error_rate
            if fault.latency is None and not fails:
                continue
            fault.fired += 1
            if fault.remaining is not None:
                fault.remaining -= 1
            if fault.latency is not None:
                await asyncio.sleep(fault.latency.sample_ms(self.rng) / 1000)
            if fails:
                if fault.after:
                    admission.after = admission.after or fault.response(service)
                else:
                    admission.release()
                    admission.rejection = fault.response(service)
                    return

    async def apply(self, *, pattern: str, service: str, method: str, path: str, query: str = "") -> Response | None:
        """The rejection only (no concurrency slot is held afterwards); for callers that have no handler to run."""
        admission = await self.admit(pattern=pattern, service=service, method=method, path=path, query=query)
        admission.release()
        return admission.rejection

    async def _apply_limits(self, request: RequestInfo, admission: Admission) -> Response | None:
        matching = [
            limit
            for limit in self.limits
            if limit.match.matches(request.method, request.service, request.path, request.pattern)
        ]
        if not matching:
            return None
        now = time.monotonic()
        # Check every window and bucket before consuming any, so a rejected request costs nothing.
        for limit in matching:
            if isinstance(limit, WindowLimit | BucketLimit):
                wait = limit.wait(request, now)
                if wait is not None:
                    return limit.reject(request, wait)
        for limit in matching:
            if isinstance(limit, WindowLimit | BucketLimit):
                remaining = limit.consume(request, now)
                limit.admitted += 1
                if limit.remaining_header:
                    admission.headers[limit.remaining_header] = str(max(0, remaining))
                if isinstance(limit, BucketLimit) and limit.cost is graph_resource_units:
                    admission.headers["x-ms-resource-unit"] = str(graph_resource_units(request))
        for limit in matching:
            if isinstance(limit, ConcurrencyLimit):
                rejection = await limit.acquire(request)
                if rejection is not None:
                    return rejection
                limit.admitted += 1
                admission.releases.append(limit.release)
        return None

    def describe_faults(self) -> list[dict[str, Any]]:
        return [fault.describe() for fault in self.faults]

    def describe_limits(self) -> list[dict[str, Any]]:
        described: list[dict[str, Any]] = []
        for limit in self.limits:
            if isinstance(limit, WindowLimit | BucketLimit | ConcurrencyLimit):
                described.append(limit.describe())
        return described
