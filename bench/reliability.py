"""The long versions of the reliability drills (tests/e2e/test_reliability.py has the short ones), on the local stack.

    python bench/reliability.py [--runs 50] [--kills 20] [--fuzz 50000]        every drill, then the last line
    python bench/reliability.py --only sigkill --save figures.json            one drill (each fits a ~10 min slot)
    python bench/reliability.py --report figures.json                         the last line from the saved drills

1. SIGKILL: two queue workers; one is killed at a random moment, restarted, and so on `kills` times, while runs are
   in flight. The host keeps a message a dead worker was running invisible for 10 minutes, as the Functions runtime
   does, and the run lease is its default: every run must finish, every action write once, and each run a killed
   worker held must resume (its next change by another invocation) within 60 s (resume_p99_s).
2. Rollback at random moments: `runs` runs whose account writes are slow; each gets a rollback request at a random
   moment of its life. Every run must end rolled back with its account enabled again (undo_missed counts accounts
   left disabled).
3. Actions slower than the lease: an 8 s lease, 11 s account writes, and a duplicate queue message for every run (what
   at-least-once delivery does): every account written once (doubled).
4. Lost responses: 30% of account writes and session revocations answer 500 *after* the emulated cloud applied them.
   Every run must finish, and no write be applied twice (applied = 2xx or the injected 500).
5. One incident, three deliveries: each incident is delivered under 3 delivery ids at once: one run each (extra_runs).
6. Chaos: 20% 5xx and 10% 429 on every Graph call: every run finishes or fails with a reason, no write twice.
7. Fuzz: every HTTP route from its schema (bench/fuzz.py): no response >= 500.

The last line is `reliability: ` and name=value pairs: runs, lost, doubled, undo_missed, extra_runs, fuzz_inputs,
fuzz_5xx, resume_p99_s (and the per-drill figures above it)."""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from harness import ROOT, add_accounts, dump, percentile, stack, trigger_body

PLAYBOOKS = str(ROOT / "tests/fixtures/playbooks")
FAST = {
    "RIPOSTE_PLAYBOOKS_DIR": PLAYBOOKS,
    "RIPOSTE_IDENTITY_PROTECTION_RPS": "50",
    "RIPOSTE_RETRY_BACKOFF_SECONDS": "0.05",
    "RIPOSTE_MAX_RETRIES": "6",
    "RIPOSTE_DESTRUCTIVE_ACTIONS_PER_HOUR": "100000",
    "RIPOSTE_HOST_MAX_POLLING_S": "0.2",
    "RIPOSTE_HOST_TRIGGERS": "http",  # the HTTP host takes no queue work: the queue workers are what is killed
}
SHORT_LEASE = {
    "RIPOSTE_HOST_QUEUE_LEASE_S": "3",
    "RIPOSTE_RUN_LEASE_SECONDS": "8",
    "RIPOSTE_REPLAY_SETTLE_SECONDS": "12",  # above the slowest write the drills inject (11 s)
}
WRITES = ("PATCH /v1.0/users/*", "POST /v1.0/users/*/revokeSignInSessions")


# --- helpers ---------------------------------------------------------------------------------------------------------


def reliability_incident(account: dict[str, str], n: int, event: str = "") -> dict[str, Any]:
    body = trigger_body(account, event or f"reliability-{account['user']}")
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
                try:
                    response = client.get(f"/api/runs/{run_id}")
                except httpx.HTTPError:
                    continue
                if response.status_code == 200:
                    finished[run_id] = response.json()
        time.sleep(0.3)
    return finished


def applied_writes(admin: httpx.Client, users: list[str], lost_status: int | None = None) -> Counter[tuple[str, str]]:
    """(user, write) -> how many times the emulated cloud applied it: a 2xx, or the status of a fault injected after
    the handler ran (the write happened, the response was lost)."""
    counts: Counter[tuple[str, str]] = Counter()
    wanted = set(users)
    for entry in admin.get("/requests", params={"service": "graph"}).json()["value"]:
        status = entry["status"]
        if entry["method"] in ("PATCH", "POST") and (200 <= status < 300 or status == lost_status):
            parts = entry["path"].split("/")
            user = next((p for p in parts if p in wanted), None)
            if user is not None:
                counts[(user, parts[-1])] += 1
    return counts


def doubled(counts: Counter[tuple[str, str]]) -> int:
    return sum(1 for n in counts.values() if n > 1)


def analyst_token(admin: httpx.Client) -> str:
    response = admin.post("/tokens", json={"roles": ["Riposte.Run", "Riposte.Read"]})
    response.raise_for_status()
    return str(response.json()["access_token"])


def users_enabled(admin: httpx.Client) -> dict[str, bool]:
    return {u["id"]: bool(u.get("accountEnabled")) for u in admin.get("/tenant").json()["graph"]["users"]}


# --- 1. SIGKILL -------------------------------------------------------------------------------------------------------


def restart(running: Any, index: int) -> None:
    """SIGKILL the worker and start it again; its output goes on in the same log, for finding out what it did."""
    worker = running.workers[index]
    worker.kill()
    worker.wait()
    log = Path(running.worker_envs[index]["RIPOSTE_STATE_DIR"]) / f"worker-{index}.log"
    with open(log, "ab") as output:
        output.write(b"--- SIGKILL, restarted ---\n")
        output.flush()
        running.workers[index] = subprocess.Popen(
            worker.args, cwd=ROOT, env=running.worker_envs[index], stdout=output, stderr=subprocess.STDOUT
        )


def wait_healthy(running: Any, index: int) -> None:
    url = f"http://127.0.0.1:{running.worker_envs[index]['RIPOSTE_HOST_PORT']}/api/health"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)


def holder(running: Any, table: Any, prefer: int) -> int:
    """The index of a worker that holds a live run lease (`prefer` if both do), waiting up to 20 s for one to."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        holding = [i for i in (prefer, 1 - prefer) if holds_a_lease(table, running.workers[i].pid)]
        if holding:
            return holding[0]
        time.sleep(0.2)
    return prefer


def holds_a_lease(table: Any, pid: int | None) -> bool:
    return any(f":{pid}:" in owner and until > time.time() for owner, until, _ in leases(table).values())


def leases(table: Any) -> dict[str, tuple[str, float, float]]:
    """run id -> (lease owner, lease end, last update) for every run, read straight from storage."""
    from shared.store.runs import unpack

    found = {}
    for entity in table.query_entities("RowKey eq 'run'"):
        body = unpack(entity)
        lease = body.get("lease") or {}
        found[body["id"]] = (str(lease.get("owner", "")), float(lease.get("until", 0)), float(body["updatedAt"]))
    return found


def sigkill(runs: int, kills: int) -> dict[str, Any]:
    from azure.data.tables import TableClient

    from shared.azure.storage import RUNS_TABLE

    chooser = random.Random(20261204)
    with stack(workers=2, **{**FAST, "RIPOSTE_HOST_MAX_POLLING_S": "2"}) as running, running.admin() as admin:
        table = TableClient.from_connection_string(running.env["AzureWebJobsStorage"], RUNS_TABLE)
        accounts = add_accounts(admin, runs, prefix="sigkill", block=3)
        admin.delete("/requests")
        # slow account writes, so a kill a moment after a worker took a run lands in the middle of that run
        admin.post("/faults", json={"match": "PATCH /v1.0/users/*", "latency": {"fixedMs": 4000}}).raise_for_status()
        resumes: list[float] = []
        watched: dict[str, tuple[float, str]] = {}  # run id -> (when its worker was killed, the dead worker's pid)
        with running.client() as client:
            ids: list[str] = []
            per_kill = max(1, runs // kills)
            for k in range(kills):
                ids += submit(client, accounts[k * per_kill : (k + 1) * per_kill])
                index = holder(running, table, prefer=k % 2)  # kill a worker while it holds a run
                pid = running.workers[index].pid
                time.sleep(chooser.uniform(0.0, 1.5))  # at a random moment of that run
                restart(running, index)
                killed = time.time()
                for run_id, (owner, until, _) in leases(table).items():
                    if f":{pid}:" in owner and until > killed and run_id not in watched:
                        watched[run_id] = (killed, str(pid))
                _collect_resumes(table, watched, resumes)
                wait_healthy(running, index)
            ids += submit(client, accounts[kills * per_kill :])
            deadline = time.monotonic() + 120
            while watched and time.monotonic() < deadline:
                _collect_resumes(table, watched, resumes)
                time.sleep(0.5)
            finished = wait_all(client, ids, timeout=600)
        counts = applied_writes(admin, [a["user"] for a in accounts])
        return {
            "runs": len(ids),
            "kills": kills,
            "lost": len(ids) - sum(1 for r in finished.values() if r["status"] == "succeeded"),
            "statuses": dict(Counter(r["status"] for r in finished.values())),
            "doubled": doubled(counts),
            "stranded runs": len(resumes) + len(watched),
            "never resumed": len(watched),
            "resume_p50_s": round(percentile(resumes, 50), 1),
            "resume_p99_s": round(percentile(resumes, 99), 1) if not watched else float("inf"),
            "resume_max_s": round(max(resumes, default=0.0), 1),
        }


def _collect_resumes(table: Any, watched: dict[str, tuple[float, str]], resumes: list[float]) -> None:
    """A stranded run has resumed when another invocation holds it, or it has changed since the kill."""
    now_leases = leases(table)
    for run_id, (killed, pid) in list(watched.items()):
        owner, _, updated = now_leases.get(run_id, ("", 0.0, 0.0))
        if f":{pid}:" not in owner or updated > killed:
            resumes.append(max(0.0, time.time() - killed) if updated <= killed else updated - killed)
            del watched[run_id]


# --- 2. rollback at random moments ------------------------------------------------------------------------------------


def rollback_at_random(runs: int) -> dict[str, Any]:
    chooser = random.Random(11)
    with stack(workers=1, **FAST) as running, running.admin() as admin, running.client() as client:
        accounts = add_accounts(admin, runs, prefix="rollback", block=5)
        admin.post("/faults", json={"match": "PATCH /v1.0/users/*", "latency": {"fixedMs": 800}}).raise_for_status()
        client.headers["authorization"] = f"Bearer {analyst_token(admin)}"
        ids = submit(client, accounts)
        submitted = time.monotonic()
        moments = sorted((chooser.uniform(0.0, 6.0), run_id) for run_id in ids)
        for moment, run_id in moments:
            time.sleep(max(0.0, submitted + moment - time.monotonic()))
            response = client.post(f"/api/runs/{run_id}/rollback")
            assert response.status_code == 202, response.text
        finished = wait_all(client, ids, timeout=600)
        enabled = users_enabled(admin)
        missed = sum(1 for a in accounts if not enabled.get(a["user"], True))
        return {
            "runs": runs,
            "lost": runs - len(finished),
            "statuses": dict(Counter(r["status"] for r in finished.values())),
            "not rolled_back": sum(1 for r in finished.values() if r["status"] != "rolled_back"),
            "undo_missed": missed,
        }


# --- 3. actions slower than the lease ---------------------------------------------------------------------------------


def send_duplicates(connection: str, runs: list[str]) -> None:
    from azure.storage.queue import QueueClient, TextBase64EncodePolicy

    from shared.azure.storage import WORK_QUEUE

    with QueueClient.from_connection_string(
        connection, WORK_QUEUE, message_encode_policy=TextBase64EncodePolicy()
    ) as queue:
        for run_id in runs:
            queue.send_message(json.dumps({"runId": run_id, "reason": "duplicate"}))


def slower_than_the_lease(runs: int) -> dict[str, Any]:
    with stack(workers=2, **FAST, **SHORT_LEASE) as running, running.admin() as admin, running.client() as client:
        accounts = add_accounts(admin, runs, prefix="slow", block=6)
        admin.delete("/requests")
        admin.post("/faults", json={"match": "PATCH /v1.0/users/*", "latency": {"fixedMs": 11000}}).raise_for_status()
        ids = submit(client, accounts)
        time.sleep(1.0)
        send_duplicates(running.env["AzureWebJobsStorage"], ids)
        finished = wait_all(client, ids, timeout=600)
        counts = applied_writes(admin, [a["user"] for a in accounts])
        return {
            "runs": runs,
            "lost": runs - sum(1 for r in finished.values() if r["status"] == "succeeded"),
            "statuses": dict(Counter(r["status"] for r in finished.values())),
            "doubled": doubled(counts),
        }


# --- 4. lost responses ------------------------------------------------------------------------------------------------


def lost_responses(runs: int) -> dict[str, Any]:
    with stack(workers=1, **FAST, **SHORT_LEASE) as running, running.admin() as admin, running.client() as client:
        accounts = add_accounts(admin, runs, prefix="lost", block=7)
        admin.delete("/requests")
        for match in WRITES:
            fault = {"match": match, "status": 500, "after": True, "errorRate": 0.3}
            admin.post("/faults", json=fault).raise_for_status()
        ids = submit(client, accounts)
        finished = wait_all(client, ids, timeout=600)
        counts = applied_writes(admin, [a["user"] for a in accounts], lost_status=500)
        return {
            "runs": runs,
            "lost": runs - sum(1 for r in finished.values() if r["status"] == "succeeded"),
            "statuses": dict(Counter(r["status"] for r in finished.values())),
            "doubled": doubled(counts),
            "writes applied": sum(counts.values()),
        }


# --- 5. one incident, three deliveries --------------------------------------------------------------------------------


def three_deliveries(incidents: int) -> dict[str, Any]:
    with stack(workers=1, **FAST) as running, running.admin() as admin, running.client() as client:
        accounts = add_accounts(admin, incidents, prefix="thrice", block=8)
        lock = threading.Lock()
        runs: dict[str, set[str]] = {}
        errors: list[str] = []

        def deliver(item: tuple[int, int]) -> None:
            n, copy = item
            account = accounts[n]
            body = reliability_incident(account, n, event=f"delivery-{copy}-{account['user']}")
            response = client.post("/api/incidents", json=body)
            with lock:
                if response.status_code not in (200, 202):
                    errors.append(response.text)
                    return
                runs.setdefault(account["incident"], set()).update(r["id"] for r in response.json()["runs"])

        with ThreadPoolExecutor(12) as pool:
            list(pool.map(deliver, [(n, copy) for n in range(incidents) for copy in range(3)]))
        ids = sorted({run_id for found in runs.values() for run_id in found})
        finished = wait_all(client, ids, timeout=600)
        return {
            "incidents": incidents,
            "deliveries": incidents * 3,
            "runs": len(ids),
            "errors": len(errors),
            "extra_runs": len(ids) - incidents,
            "lost": len(ids) - len(finished),
        }


# --- 6. chaos ---------------------------------------------------------------------------------------------------------


def chaos(runs: int) -> dict[str, Any]:
    with stack(workers=1, **FAST, **SHORT_LEASE) as running, running.admin() as admin, running.client() as client:
        accounts = add_accounts(admin, runs, prefix="chaos", block=4)
        admin.delete("/requests")
        admin.post("/faults", json={"match": "* /v1.0/*", "errorRate": 0.2, "status": 503}).raise_for_status()
        admin.post("/faults", json={"match": "* /v1.0/*", "errorRate": 0.1, "status": 429}).raise_for_status()
        ids = submit(client, accounts)
        finished = wait_all(client, ids, timeout=900)
        counts = applied_writes(admin, [a["user"] for a in accounts])
        return {
            "runs": runs,
            "lost": runs - len(finished),
            "statuses": dict(Counter(r["status"] for r in finished.values())),
            "failed without a reason": sum(1 for r in finished.values() if r["status"] == "failed" and not r["reason"]),
            "doubled": doubled(counts),
        }


# --- 7. fuzz ----------------------------------------------------------------------------------------------------------


def fuzz_routes(count: int) -> dict[str, Any]:
    """bench/fuzz.py drives every route from its schema, on a host of its own (HTTP triggers only)."""
    import fuzz
    from harness import FUNCTION_KEY

    with stack(workers=0) as running, running.admin() as admin:
        result = fuzz.fuzz(
            running.host_url,
            FUNCTION_KEY,
            fuzz.admin_token_factory(admin),
            count,
            storage_connection=running.env["AzureWebJobsStorage"],
        )
    figures = result.figures()
    figures.pop("examples", None)
    return {"fuzz_inputs": result.inputs, "fuzz_5xx": result.server_errors, **figures}


DRILLS: dict[str, tuple[str, Callable[[argparse.Namespace], dict[str, Any]]]] = {
    "sigkill": ("SIGKILL the workers", lambda a: sigkill(a.runs, a.kills)),
    "rollback": ("rollback at random moments", lambda a: rollback_at_random(a.runs)),
    "slow": ("actions slower than the lease", lambda a: slower_than_the_lease(max(5, a.runs // 5))),
    "lost": ("responses lost after the write", lambda a: lost_responses(max(10, a.runs // 2))),
    "thrice": ("one incident, three delivery ids", lambda a: three_deliveries(max(5, a.runs // 5))),
    "chaos": ("20% 5xx and 10% 429 on Graph", lambda a: chaos(a.runs)),
    "fuzz": ("fuzz every route", lambda a: fuzz_routes(a.fuzz)),
}


def summary(drills: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The figures of the last line, from the drills run (a drill not run leaves its figures out)."""
    run_drills = [d for name, d in drills.items() if name != "fuzz"]
    total: dict[str, Any] = {
        "runs": sum(int(d.get("runs", 0)) for d in run_drills),
        "lost": sum(int(d.get("lost", 0)) for d in run_drills),
        "doubled": sum(int(d.get("doubled", 0)) for d in run_drills),
    }
    picks = [
        ("undo_missed", "rollback", "undo_missed"),
        ("extra_runs", "thrice", "extra_runs"),
        ("fuzz_inputs", "fuzz", "fuzz_inputs"),
        ("fuzz_5xx", "fuzz", "fuzz_5xx"),
        ("resume_p99_s", "sigkill", "resume_p99_s"),
    ]
    for name, drill, figure in picks:
        if drill in drills:
            total[name] = drills[drill][figure]
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50, help="runs per drill (default 50)")
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs in the SIGKILL drill (default 20)")
    parser.add_argument("--fuzz", type=int, default=50_000, help="fuzz inputs (default 50,000)")
    parser.add_argument("--only", action="append", choices=sorted(DRILLS), help="run only this drill (repeatable)")
    parser.add_argument("--save", type=Path, help="merge each drill's figures into this JSON file as it ends")
    parser.add_argument("--report", type=Path, help="run nothing: print the last line from the drills saved here")
    args = parser.parse_args()
    # `timeout` (or Ctrl-C) must still stop the stack: SIGTERM unwinds through stack()'s cleanup.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    saved: dict[str, dict[str, Any]] = {}
    if args.save and args.save.exists():
        saved = json.loads(args.save.read_text())
    if args.report:
        drills = json.loads(args.report.read_text())
    else:
        drills = {}
        for key in args.only or list(DRILLS):
            title, run = DRILLS[key]
            started = time.monotonic()
            figures = run(args)
            drills[key] = {"drill": title, **figures, "seconds": round(time.monotonic() - started), **_load()}
            dump({key: drills[key]})
            if args.save:
                saved[key] = drills[key]
                args.save.write_text(json.dumps(saved, indent=2))
    missing = sorted(set(DRILLS) - set(drills))
    if missing:
        print(f"(drills not in this line: {', '.join(missing)})")
    print("reliability: " + " ".join(f"{name}={value}" for name, value in summary(drills).items()))


def _load() -> dict[str, Any]:
    """The machine's load average at the end of a drill: the figures of a shared machine mean little without it."""
    one, five, _ = os.getloadavg()
    return {"load_1m": round(one, 2), "load_5m": round(five, 2)}


if __name__ == "__main__":
    main()
