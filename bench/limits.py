"""Scale-out under the real limits: throughput with 1, 2 and 4 queue-worker processes sharing one tenant's limits.

    python bench/limits.py [--runs N] [--scale S] [--workers 1,2,4]

Each worker count gets a fresh stack (Azurite, the emulated cloud enforcing its `real` preset sped up S times, one
HTTP host and N queue workers, as Flex Consumption scales them), a warm-up of 3 runs per worker without limits, and
a burst of --runs incidents whose playbook
(bench/playbooks-limits) calls every limited service in each run: Identity Protection, Log Analytics, Sentinel writes.
The workers' limiters are the shared ones (RIPOSTE_LIMITER=shared, table RiposteLimits in Azurite).

Figures, each printed with its goal:
- limit_fraction: finished runs/s (first intake to last finish) / the most the limits allow. That maximum is taken
  per limited service from the calls the runs actually made (the emulated cloud's request log, 429s excluded):
  service rate x time scale / admitted calls per run; the smallest binds. Goal >= 0.95 (bar 0.9).
- limited_429_pct: 429s / calls to the limited services. Goal <= 1%.
- failed: runs that did not succeed, or did not finish within the time allowed. Goal 0.

Identity Protection's limit is 1 request/s per tenant for all apps together; the bench sets
RIPOSTE_IDENTITY_PROTECTION_RPS to 0.95 of it (Riposte as the tenant's only caller; the product default, 0.8, leaves
room for other apps), so 0.95 is also the ceiling of limit_fraction here.

Ends with one line per worker count: `limits: workers=N limit_fraction=... limited_429_pct=... failed=...`."""

from __future__ import annotations

import argparse
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from harness import add_accounts, dump, stack, trigger_body

PLAYBOOKS = str(Path(__file__).parent / "playbooks-limits")
IDENTITY_PROTECTION_SHARE = 0.95
# The services' documented limits (local/cloud/controls.py real_limits): requests per second, before time scaling.
SERVICE_RATES = {
    "graph-identity-protection": 1.0,
    "sentinel-comment-put": 75 / 300,
    "sentinel-incident-put": 75 / 300,
}
LIMITED = (*SERVICE_RATES, "loganalytics-concurrency")
GOALS = {"limit_fraction": ">= 0.95 (bar 0.9)", "limited_429_pct": "<= 1", "failed": "0"}


def settings_for(scale: float) -> dict[str, str]:
    return {
        "RIPOSTE_PLAYBOOKS_DIR": PLAYBOOKS,
        "RIPOSTE_HOST_TRIGGERS": "http",  # the HTTP host takes no queue messages: the workers alone run the runs
        "RIPOSTE_LIMITER": "shared",
        "RIPOSTE_IDENTITY_PROTECTION_RPS": str(IDENTITY_PROTECTION_SHARE * scale),
        "RIPOSTE_SENTINEL_WRITES_PER_5MIN": "75",
        "RIPOSTE_SENTINEL_WRITE_WINDOW_SECONDS": str(300 / scale),
        "RIPOSTE_DESTRUCTIVE_ACTIONS_PER_HOUR": "1000000",
        "RIPOSTE_HOST_MAX_POLLING_S": "0.05",
        "RIPOSTE_LRO_POLL_SECONDS": "0.05",
        "RIPOSTE_RETRY_BACKOFF_SECONDS": "0.1",
    }


def post_all(running: Any, accounts: list[dict[str, str]], tag: str) -> dict[str, float]:
    submitted: dict[str, float] = {}

    def post(account: dict[str, str]) -> None:
        with running.client() as client:
            started = time.perf_counter()
            response = client.post("/api/incidents", json=trigger_body(account, f"{tag}-{account['n']}"))
            response.raise_for_status()
            submitted[response.json()["runs"][0]["id"]] = started

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(post, accounts))
    return submitted


def wait_all(
    running: Any, submitted: dict[str, float], timeout_s: float, steps: Counter[str] | None = None
) -> tuple[dict[str, float], Counter[str]]:
    """When each run finished, and how many ended in each status; `steps` counts the finished runs' step statuses."""
    finished: dict[str, float] = {}
    statuses: Counter[str] = Counter()
    pending = set(submitted)
    deadline = time.monotonic() + timeout_s
    with running.client() as client:
        while pending and time.monotonic() < deadline:
            for run_id in list(pending):
                response = client.get(f"/api/runs/{run_id}")
                if response.status_code == 200:
                    finished[run_id] = time.perf_counter()
                    run = response.json()
                    statuses[run["status"]] += 1
                    if steps is not None:
                        steps.update(str(step.get("status")) for step in run["steps"])
                    pending.discard(run_id)
            time.sleep(0.25)
    statuses["unfinished"] += len(pending)
    return finished, statuses


def limit_bound_runs_per_s(limits: dict[str, dict[str, Any]], runs: int, scale: float) -> tuple[float, str]:
    """The most runs/s the limits allow for the calls these runs made: per rate-limited service, its rate over its
    admitted calls per run; the smallest, and which service it is."""
    bounds = {
        name: rate * scale / (limits[name]["admitted"] / runs)
        for name, rate in SERVICE_RATES.items()
        if name in limits and limits[name]["admitted"]
    }
    binding = min(bounds, key=lambda name: bounds[name])
    return bounds[binding], binding


def measure(workers: int, runs: int, scale: float) -> dict[str, Any]:
    with stack(workers=workers, **settings_for(scale)) as running, running.admin() as admin:
        # Warm up first, without limits: a worker's first run imports the SDKs and opens connections (cold start
        # is bench/cold_start.py's figure), which here would read as time lost to the limiters.
        warm = add_accounts(admin, 3 * workers, prefix="warm", block=1)
        warmed, _ = wait_all(running, post_all(running, warm, f"warm-{workers}-{time.time():.0f}"), timeout_s=600)
        assert len(warmed) == len(warm), "the warm-up runs did not finish"
        accounts = add_accounts(admin, runs, prefix=f"limits{workers}")
        admin.delete("/requests")
        admin.delete("/limits")
        admin.post("/limits", json={"preset": "real", "timeScale": scale}).raise_for_status()
        began = time.perf_counter()
        submitted = post_all(running, accounts, f"limits-{workers}-{time.time():.0f}")
        # The slowest the limits allow, twice over, plus a minute: longer means something is stuck.
        steps: Counter[str] = Counter()
        finished, statuses = wait_all(running, submitted, timeout_s=2 * runs * 4 / scale + 60, steps=steps)
        elapsed = max(finished.values()) - began if finished else float("nan")
        limits = {d["name"]: d for d in admin.get("/limits").json()["value"]}
        throttled = sum(limits[n]["rejected"] for n in LIMITED if n in limits)
        limited_calls = sum(limits[n]["admitted"] + limits[n]["rejected"] for n in LIMITED if n in limits)
        bound, binding = limit_bound_runs_per_s(limits, max(1, len(finished)), scale)
        runs_per_s = len(finished) / elapsed
        return {
            "workers": workers,
            "runs": runs,
            "time scale": scale,
            "runs/s": round(runs_per_s, 3),
            "limit-bound max runs/s": round(bound, 3),
            "binding limit": binding,
            "limit_fraction": round(runs_per_s / bound, 3),
            "limited_429_pct": round(100 * throttled / max(1, limited_calls), 2),
            "failed": sum(n for status, n in statuses.items() if status != "succeeded"),
            "run statuses": dict(statuses),
            "step statuses (a failed lookup is recorded and the run goes on)": dict(steps),
            "calls and 429s per limit": {
                name: {key: limits[name][key] for key in ("admitted", "rejected")} for name in LIMITED if name in limits
            },
            "worker peak RSS MB": round(running.worker_peak_rss_mb(), 1),
            "goals": GOALS,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--scale", type=float, default=5.0)
    parser.add_argument("--workers", default="1,2,4")
    args = parser.parse_args()
    results = [measure(int(n), args.runs, args.scale) for n in args.workers.split(",")]
    for result in results:
        dump({f"real limits x{args.scale:g}, {result['workers']} worker(s)": result})
    for result in results:
        print(
            f"limits: workers={result['workers']} limit_fraction={result['limit_fraction']} "
            f"limited_429_pct={result['limited_429_pct']} failed={result['failed']}"
        )


if __name__ == "__main__":
    main()
