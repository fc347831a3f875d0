"""Intake under a burst, with the HTTP triggers in their own process (RIPOSTE_HOST_TRIGGERS=http), as Flex
Consumption runs them apart from the queue workers.

    python bench/intake.py [--incidents 500] [--clients 32] [--workers 2]

- burst: --incidents distinct incidents posted by --clients clients at once (each client one keep-alive connection),
  while --workers queue workers run the runs beside it on this machine. intake_p99_ms: goal <= 100 ms (bar 500 ms);
  errors (anything but 202): goal 0. intake_cpu_ms: the HTTP process's CPU time (user + system, /proc) per incident.
- capacity: incidents/s the HTTP process accepts with p99 <= 100 ms, posted at a steady rate (no workers running, so
  the figure is the HTTP process's, not this 2-core machine's): each rate for a few seconds, up until p99 passes 100 ms.

Ends with `intake: intake_p99_ms=... intake_p50_ms=... errors=... intake_cpu_ms=... capacity_per_s=...`."""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from harness import FUNCTION_KEY, add_accounts, dump, percentile, stack, trigger_body

PLAYBOOKS = str(Path(__file__).parent / "playbooks")
GOALS = {"intake_p99_ms": "<= 100 (bar 500)", "errors": "0"}
SETTINGS = {
    "RIPOSTE_PLAYBOOKS_DIR": PLAYBOOKS,
    "RIPOSTE_HOST_TRIGGERS": "http",
    "RIPOSTE_DESTRUCTIVE_ACTIONS_PER_HOUR": "1000000",
    "RIPOSTE_IDENTITY_PROTECTION_RPS": "1000",
    "RIPOSTE_SENTINEL_WRITES_PER_5MIN": "1000000",
    "RIPOSTE_HOST_MAX_POLLING_S": "0.05",
}
CAPACITY_RATES = (25, 50, 100, 150, 200, 300)
CAPACITY_SECONDS = 4.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Poster:
    """One keep-alive client per thread; every post's latency and status."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.local = threading.local()
        self.latencies: list[float] = []
        self.statuses: Counter[int | str] = Counter()

    def post(self, body: dict[str, Any]) -> None:
        client = getattr(self.local, "client", None)
        if client is None:
            client = self.local.client = httpx.Client(
                base_url=self.url, headers={"x-functions-key": FUNCTION_KEY}, timeout=60
            )
        started = time.perf_counter()
        try:
            status: int | str = client.post("/api/incidents", json=body).status_code
        except httpx.HTTPError as error:
            status = type(error).__name__
        self.latencies.append((time.perf_counter() - started) * 1000)
        self.statuses[status] += 1


def burst(incidents: int, clients: int, workers: int) -> dict[str, Any]:
    with stack(workers=workers, **SETTINGS) as running, running.admin() as admin:
        accounts = add_accounts(admin, incidents + clients, prefix="intake", block=4)
        poster = Poster(running.host_url)
        with ThreadPoolExecutor(max_workers=clients) as pool:  # warm: one per client, connections and imports
            list(pool.map(poster.post, [trigger_body(a, f"intake-warm-{a['n']}") for a in accounts[incidents:]]))
            poster.latencies.clear()
            poster.statuses.clear()
            before = cpu_seconds(running.host.pid)
            began = time.perf_counter()
            list(pool.map(poster.post, [trigger_body(a, f"intake-{a['n']}") for a in accounts[:incidents]]))
            elapsed = time.perf_counter() - began
        used = cpu_seconds(running.host.pid) - before
        return {
            "incidents": incidents,
            "clients": clients,
            "queue workers running beside it": workers,
            "intake_p50_ms": round(percentile(poster.latencies, 50), 1),
            "intake_p99_ms": round(percentile(poster.latencies, 99), 1),
            "intake max ms": round(max(poster.latencies), 1),
            "errors": sum(n for status, n in poster.statuses.items() if status != 202),
            "statuses": {str(k): v for k, v in poster.statuses.items()},
            "accepted per s": round(incidents / elapsed, 1),
            "intake_cpu_ms": round(used * 1000 / incidents, 2),
            "HTTP process peak RSS MB": round(running.peak_rss_mb(running.host), 1),
            "goals": GOALS,
        }


def capacity(clients: int) -> dict[str, Any]:
    """The highest steady rate whose p99 stays within 100 ms, the HTTP process alone."""
    per_rate: dict[str, dict[str, float]] = {}
    best = 0
    with stack(workers=0, **SETTINGS) as running, running.admin() as admin:
        total = sum(int(r * CAPACITY_SECONDS) for r in CAPACITY_RATES) + clients
        accounts = iter(add_accounts(admin, total, prefix="capacity", block=5))
        poster = Poster(running.host_url)
        with ThreadPoolExecutor(max_workers=clients) as pool:
            list(pool.map(poster.post, [trigger_body(next(accounts), f"capacity-warm-{n}") for n in range(clients)]))
            for rate in CAPACITY_RATES:
                poster.latencies.clear()
                poster.statuses.clear()
                began = time.perf_counter()
                futures = []
                for n in range(int(rate * CAPACITY_SECONDS)):
                    delay = began + n / rate - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                    account = next(accounts)
                    futures.append(pool.submit(poster.post, trigger_body(account, f"capacity-{account['n']}")))
                for future in futures:
                    future.result()
                p99 = percentile(poster.latencies, 99)
                errors = sum(n for status, n in poster.statuses.items() if status != 202)
                per_rate[str(rate)] = {"p50_ms": round(percentile(poster.latencies, 50), 1), "p99_ms": round(p99, 1)}
                if p99 > 100 or errors:
                    break
                best = rate
    return {"capacity_per_s": best, "by rate (incidents/s)": per_rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--incidents", type=int, default=500)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    figures = {**burst(args.incidents, args.clients, args.workers), **capacity(args.clients)}
    dump({"intake burst": figures})
    print(
        f"intake: intake_p99_ms={figures['intake_p99_ms']} intake_p50_ms={figures['intake_p50_ms']} "
        f"errors={figures['errors']} intake_cpu_ms={figures['intake_cpu_ms']} "
        f"capacity_per_s={figures['capacity_per_s']}"
    )


if __name__ == "__main__":
    main()
