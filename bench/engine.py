"""Engine benchmarks on the local stack (Azurite, emulated cloud, functions host). Prints figures; not a test.

    python bench/engine.py [burst] [storm]      (both by default)

The critical path is bench/critical_path.py's (computed from the playbook, not from the run's own step durations).
burst: 500 distinct incidents posted at once: intake p50/p99, runs/s, time to finished p50/p99, the worker's peak
  RSS; then again with the emulated cloud enforcing the real services' limits, time-scaled, and the throughput as a
  fraction of the most those limits allow.
storm: every incident delivered three times at once: one run each, one successful write per action.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from harness import add_accounts, dump, percentile, stack, trigger_body

LATENCY_MS = 50
BENCH_PLAYBOOKS = str(Path(__file__).parent / "playbooks")
FAST = {
    "RIPOSTE_HOST_MAX_POLLING_S": "0.05",
    "RIPOSTE_LRO_POLL_SECONDS": "0.05",
    "RIPOSTE_RETRY_BACKOFF_SECONDS": "0.1",
}


def wait_finished(client: httpx.Client, run_id: str, timeout: float = 600, interval: float = 0.01) -> tuple[float, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/api/runs/{run_id}")
        if response.status_code == 200:
            return time.perf_counter(), response.json()
        if time.monotonic() > deadline:
            raise RuntimeError(f"run {run_id} did not finish")
        time.sleep(interval)


def burst(count: int = 500, limited: bool = False, workers: int = 2) -> dict[str, Any]:
    settings = dict(
        FAST,
        RIPOSTE_PLAYBOOKS_DIR=BENCH_PLAYBOOKS,
        RIPOSTE_DESTRUCTIVE_ACTIONS_PER_HOUR="100000",
        RIPOSTE_IDENTITY_PROTECTION_RPS="1000",
        RIPOSTE_SENTINEL_WRITES_PER_5MIN="100000",
    )
    scale = 5.0
    if limited:
        # The real limits sped up 5 times: Identity Protection 1/s -> 5/s; Sentinel 75 writes per 5 min -> per 60 s.
        # (Sped up further, this 2-core machine's CPU binds before the limits do, and the fraction measures the CPU.)
        settings.update(
            RIPOSTE_IDENTITY_PROTECTION_RPS=str(1.0 * scale),
            RIPOSTE_SENTINEL_WRITES_PER_5MIN="75",
            RIPOSTE_SENTINEL_WRITE_WINDOW_SECONDS=str(300 / scale),
        )
    with stack(workers=workers, **settings) as running, running.admin() as admin:
        accounts = add_accounts(admin, count)
        admin.delete("/requests")
        if limited:
            admin.post("/limits", json={"preset": "real", "timeScale": scale}).raise_for_status()
        intake_ms: list[float] = []
        submitted: dict[str, float] = {}

        def post(account: dict[str, str]) -> None:
            with running.client() as client:
                body = trigger_body(account, f"burst-{account['n']}")
                started = time.perf_counter()
                response = client.post("/api/incidents", json=body)
                intake_ms.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 202, response.text
                submitted[response.json()["runs"][0]["id"]] = started

        began = time.perf_counter()
        with ThreadPoolExecutor(max_workers=32) as pool:
            list(pool.map(post, accounts))
        finished_at: dict[str, float] = {}
        statuses: Counter[str] = Counter()
        with running.client() as client:
            pending = set(submitted)
            deadline = time.monotonic() + 900
            while pending and time.monotonic() < deadline:
                for run_id in list(pending):
                    response = client.get(f"/api/runs/{run_id}")
                    if response.status_code == 200:
                        finished_at[run_id] = time.perf_counter()
                        statuses[response.json()["status"]] += 1
                        pending.discard(run_id)
                time.sleep(0.2)
        total = max(finished_at.values()) - began
        to_finish = [finished_at[r] - submitted[r] for r in finished_at]
        throttled = sum(1 for e in admin.get("/requests").json()["value"] if e["status"] == 429)
        figures: dict[str, Any] = {
            "incidents": count,
            "intake p50 ms": round(percentile(intake_ms, 50), 1),
            "intake p99 ms": round(percentile(intake_ms, 99), 1),
            "runs/s": round(len(finished_at) / total, 2),
            "time to finished p50 s": round(percentile(to_finish, 50), 2),
            "time to finished p99 s": round(percentile(to_finish, 99), 2),
            "queue workers": workers,
            "worker peak RSS MB": round(running.worker_peak_rss_mb(), 1),
            "HTTP host peak RSS MB": round(running.peak_rss_mb(running.host), 1),
            "run statuses": dict(statuses),
            "429s from the cloud": throttled,
        }
        if limited:
            # Per run: 4 Identity Protection calls (risk GET, detections GET, confirm's GET and POST) at 1/s each;
            # 1 Sentinel write (the comment) of 75 per 5 minutes. Both sped up `scale` times.
            allowed = min(1.0 * scale / 4, 75 / (300 / scale))
            figures["limit-bound max runs/s"] = round(allowed, 2)
            figures["throughput fraction of the limits"] = round(figures["runs/s"] / allowed, 2)
        return figures


def intake_alone(count: int = 200) -> dict[str, Any]:
    """Intake latency when requests do not queue behind each other: the cost of one intake, end to end."""
    settings = dict(FAST, RIPOSTE_PLAYBOOKS_DIR=BENCH_PLAYBOOKS, RIPOSTE_DESTRUCTIVE_ACTIONS_PER_HOUR="100000")
    with stack(workers=1, **settings) as running, running.admin() as admin, running.client() as client:
        accounts = add_accounts(admin, count, prefix="alone", block=2)
        latencies = []
        for account in accounts:
            started = time.perf_counter()
            response = client.post("/api/incidents", json=trigger_body(account, f"alone-{account['n']}"))
            latencies.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 202, response.text
            time.sleep(0.05)  # one every 50 ms: the workers run beside it, as they would
        return {
            "requests": count,
            "intake p50 ms": round(percentile(latencies, 50), 1),
            "intake p99 ms": round(percentile(latencies, 99), 1),
        }


def storm(count: int = 100) -> dict[str, Any]:
    settings = dict(
        FAST,
        RIPOSTE_PLAYBOOKS_DIR=BENCH_PLAYBOOKS,
        RIPOSTE_DESTRUCTIVE_ACTIONS_PER_HOUR="100000",
        RIPOSTE_IDENTITY_PROTECTION_RPS="1000",
    )
    with stack(workers=2, **settings) as running, running.admin() as admin:
        accounts = add_accounts(admin, count, prefix="storm", block=1)
        admin.delete("/requests")
        runs: dict[str, set[str]] = {}

        def post(item: tuple[dict[str, str], int]) -> None:
            account, _ = item
            with running.client() as client:
                response = client.post("/api/incidents", json=trigger_body(account, f"storm-{account['n']}"))
                assert response.status_code in (200, 202), response.text
                runs.setdefault(account["n"], set()).update(r["id"] for r in response.json()["runs"])

        with ThreadPoolExecutor(max_workers=48) as pool:
            list(pool.map(post, [(a, i) for a in accounts for i in range(3)]))
        with running.client() as client:
            for ids in runs.values():
                for run_id in ids:
                    wait_finished(client, run_id, interval=0.2)
        writes: Counter[tuple[str, str]] = Counter()
        for entry in admin.get("/requests").json()["value"]:
            if entry["method"] in ("PATCH", "POST", "PUT") and 200 <= entry["status"] < 300:
                writes[(entry["method"], entry["path"].split("?")[0])] += 1
        per_action = Counter(writes.values())
        repeated = [f"{method} {path} x{n}" for (method, path), n in writes.items() if n > 1]
        return {
            "incidents": count,
            "deliveries": 3 * count,
            "runs created": sum(len(ids) for ids in runs.values()),
            "incidents with more than one run": sum(1 for ids in runs.values() if len(ids) != 1),
            "successful writes per (method, path): how many targets got N": dict(per_action),
            "targets written more than once (confirmCompromised is one path for every user)": repeated[:12],
        }


def main() -> None:
    chosen = sys.argv[1:] or ["burst", "storm"]
    if "burst" in chosen:
        dump({"burst, no limits": burst()})
        # One queue worker: the limiters are per instance, and at x5 one worker has more capacity than the limits.
        dump({"burst, real limits x5": burst(300, limited=True, workers=1)})
        dump({"intake alone, one request at a time": intake_alone()})
    if "storm" in chosen:
        dump({"duplicate storm": storm()})


if __name__ == "__main__":
    main()
