"""The long versions of the reliability tests (tests/e2e/test_reliability.py), on the local stack. Prints figures.

    python bench/reliability.py [runs] [kills]      (default 100 runs, 12 kills)

1. SIGKILL the queue worker at random points while `runs` runs are in flight, restart it each time: every run must
   complete and every action execute exactly once (one successful write per action in the request log).
2. 20% 5xx and 10% 429 injected into every Graph call: every run completes or fails with an explicit reason, and no
   action's write succeeds twice."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections import Counter
from typing import Any

import httpx
from harness import ROOT, add_accounts, dump, stack, trigger_body

PLAYBOOKS = str(ROOT / "tests/fixtures/playbooks")
SETTINGS = {
    "RIPOSTE_PLAYBOOKS_DIR": PLAYBOOKS, "RIPOSTE_HOST_QUEUE_LEASE_S": "3", "RIPOSTE_RUN_LEASE_SECONDS": "3",
    "RIPOSTE_IDENTITY_PROTECTION_RPS": "50", "RIPOSTE_RETRY_BACKOFF_SECONDS": "0.05", "RIPOSTE_MAX_RETRIES": "6",
    "RIPOSTE_DESTRUCTIVE_ACTIONS_PER_HOUR": "100000", "RIPOSTE_HOST_MAX_POLLING_S": "0.1",
}  # fmt: skip


def reliability_incident(account: dict[str, str], n: int) -> dict[str, Any]:
    body = trigger_body(account, f"reliability-{n}")
    body["object"]["properties"]["title"] = f"reliability {n}"  # the test playbook matches these titles
    return body


def submit(client: httpx.Client, accounts: list[dict[str, str]]) -> list[str]:
    runs = []
    for n, account in enumerate(accounts):
        response = client.post("/api/incidents", json=reliability_incident(account, n))
        assert response.status_code == 202, response.text
        runs.append(response.json()["runs"][0]["id"])
    return runs


def wait_all(client: httpx.Client, runs: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    finished: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while len(finished) < len(runs) and time.monotonic() < deadline:
        for run_id in runs:
            if run_id not in finished:
                response = client.get(f"/api/runs/{run_id}")
                if response.status_code == 200:
                    finished[run_id] = response.json()
        time.sleep(0.3)
    return finished


def writes_per_action(admin: httpx.Client, users: list[str]) -> Counter[int]:
    counts: Counter[tuple[str, str]] = Counter()
    for entry in admin.get("/requests", params={"service": "graph"}).json()["value"]:
        if entry["method"] in ("PATCH", "POST") and 200 <= entry["status"] < 300:
            for user in users:
                if user in entry["path"]:
                    counts[(user, entry["path"].rsplit("/", 1)[-1])] += 1
    return Counter(counts.values())


def kill_and_restart(running: Any, index: int = 0) -> None:
    worker = running.workers[index]
    worker.kill()
    worker.wait()
    replacement = subprocess.Popen(
        worker.args, cwd=ROOT, env=running.worker_envs[index], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    running.workers[index] = replacement


def sigkill(runs: int, kills: int) -> dict[str, Any]:
    chooser = random.Random(20261129)
    with stack(workers=1, **SETTINGS) as running, running.admin() as admin, running.client() as client:
        accounts = add_accounts(admin, runs, prefix="reliability", block=3)
        admin.delete("/requests")
        admin.post("/faults", json={"match": "* /v1.0/*", "latency": {"fixedMs": 40}}).raise_for_status()
        ids = submit(client, accounts)
        for _ in range(kills):
            time.sleep(chooser.uniform(0.3, 2.0))
            kill_and_restart(running)
        finished = wait_all(client, ids, timeout=900)
        statuses = Counter(r["status"] for r in finished.values())
        return {
            "runs": runs,
            "kills": kills,
            "finished": len(finished),
            "statuses": dict(statuses),
            "successful writes per action -> how many actions": dict(
                writes_per_action(admin, [a["user"] for a in accounts])
            ),
        }


def chaos(runs: int) -> dict[str, Any]:
    with stack(workers=1, **SETTINGS) as running, running.admin() as admin, running.client() as client:
        accounts = add_accounts(admin, runs, prefix="chaos", block=4)
        admin.delete("/requests")
        admin.post("/faults", json={"match": "* /v1.0/*", "errorRate": 0.2, "status": 503}).raise_for_status()
        admin.post("/faults", json={"match": "* /v1.0/*", "errorRate": 0.1, "status": 429}).raise_for_status()
        ids = submit(client, accounts)
        finished = wait_all(client, ids, timeout=900)
        failed_without_reason = sum(1 for r in finished.values() if r["status"] == "failed" and not r["reason"])
        return {
            "runs": runs,
            "finished": len(finished),
            "statuses": dict(Counter(r["status"] for r in finished.values())),
            "failed without a reason": failed_without_reason,
            "successful writes per action -> how many actions": dict(
                writes_per_action(admin, [a["user"] for a in accounts])
            ),
        }


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    kills = int(sys.argv[2]) if len(sys.argv) > 2 else 12
    dump({"SIGKILL the worker": sigkill(runs, kills)})
    dump({"20% 5xx and 10% 429 on Graph": chaos(runs)})


if __name__ == "__main__":
    main()
