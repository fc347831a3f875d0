"""Worker CPU per compromised-account run on the local stack, without limits. Prints figures; not a test.

    python bench/cpu.py [runs]      (50 by default)

One queue worker (RIPOSTE_HOST_TRIGGERS=queue) runs every run; the HTTP host only takes the incidents in. The figure
is the worker process's CPU time (user + system, from /proc: what time.process_time() would say inside it, so other
load on the machine does not inflate it, unlike wall time) over the runs it finished, after a warm-up run; the cold
figure is the worker's CPU from its start through its first run, imports and client construction included.
The playbook is the bench's burst-account: profile, risk, detections; disable, revoke, confirm; a comment."""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from engine import BENCH_PLAYBOOKS, FAST, wait_finished
from harness import add_accounts, dump, stack, trigger_body

GOAL_MS = 30.0
IDLE_S = 5.0
COLD_GOAL_S = 1.0


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/<pid>/stat (fields 14 and 15, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def submit(client: httpx.Client, account: dict[str, str], event: str) -> str:
    response = client.post("/api/incidents", json=trigger_body(account, event))
    assert response.status_code == 202, response.text
    run_id: str = response.json()["runs"][0]["id"]
    return run_id


def measure(runs: int) -> dict[str, Any]:
    settings = dict(
        FAST,
        RIPOSTE_PLAYBOOKS_DIR=BENCH_PLAYBOOKS,
        RIPOSTE_HOST_TRIGGERS="http",  # the workers get RIPOSTE_HOST_TRIGGERS=queue
        RIPOSTE_DESTRUCTIVE_ACTIONS_PER_HOUR="100000",
        RIPOSTE_IDENTITY_PROTECTION_RPS="1000",
        RIPOSTE_SENTINEL_WRITES_PER_5MIN="100000",
    )
    with stack(workers=1, **settings) as running, running.admin() as admin, running.client() as client:
        worker = running.workers[0].pid
        accounts = add_accounts(admin, runs + 1, prefix="cpu", block=3)
        started_cpu = cpu_seconds(worker)
        _, first = wait_finished(client, submit(client, accounts[0], "cpu-warm"), interval=0.05)
        cold = cpu_seconds(worker)
        idle_from = cpu_seconds(worker)
        time.sleep(IDLE_S)  # the queue polling costs CPU while nothing runs, too
        idle_per_s = (cpu_seconds(worker) - idle_from) / IDLE_S
        admin.delete("/requests")
        before = cpu_seconds(worker)
        wall = time.perf_counter()
        with ThreadPoolExecutor(max_workers=8) as pool:
            ids = list(pool.map(lambda a: submit(client, a, f"cpu-{a['n']}"), accounts[1:]))
        statuses = [wait_finished(client, run_id, interval=0.05)[1]["status"] for run_id in ids]
        wall = time.perf_counter() - wall
        used = cpu_seconds(worker) - before
        calls = admin.get("/requests").json()["value"]
        cloud_calls = [c for c in calls if c["service"] in ("graph", "arm", "loganalytics")]
    per_run_ms = used * 1000 / runs
    return {
        "runs": runs,
        "statuses": {s: statuses.count(s) for s in set(statuses)},
        "first run status": first["status"],
        "worker CPU ms per run": round(per_run_ms, 1),
        "goal ms": GOAL_MS,
        "idle worker CPU ms per s (queue polling)": round(idle_per_s * 1000, 1),
        "worker CPU ms per run less idle polling": round((used - idle_per_s * wall) * 1000 / runs, 1),
        "cold: worker CPU s from start through the first run": round(cold, 2),
        "cold: of which before the first run (start, imports, polling)": round(started_cpu, 2),
        "cold goal s": COLD_GOAL_S,
        "Graph/ARM/Log Analytics calls per run": round(len(cloud_calls) / runs, 2),
        "wall s (loaded machine, for reference only)": round(wall, 1),
    }


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    figures = measure(runs)
    dump({"worker CPU per run": figures})
    print(f"cpu: cpu_ms_per_run={figures['worker CPU ms per run']} goal_ms={GOAL_MS:g}")


if __name__ == "__main__":
    main()
