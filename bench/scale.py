"""The scale-out figures of issue 12 in one go, each beside its goal and the machine's load while it was measured.

    python bench/scale.py [--workers 2] [--runs 150] [--scale 5] [--incidents 500] [--all] [--out .riposte/bench]

Drives, each on a fresh local stack:
- bench/critical_path.py: cp_ratio, at 50 ms per call, against the computed critical path (goal <= 1.10, bar 1.3);
- bench/intake.py: a burst of --incidents from 32 clients with the HTTP triggers in their own process and --workers
  queue workers running beside them (intake_p99_ms: goal <= 100, bar 500; errors 0), intake CPU per incident, and
  the HTTP process's capacity at p99 <= 100 ms;
- bench/limits.py, once per worker count in --workers (e.g. 1,2,4): limit_fraction (goal >= 0.95, bar 0.9),
  limited_429_pct (goal <= 1), failed (goal 0), the workers' peak RSS (rss_mb, goal <= 200);
- bench/cpu.py: worker CPU per run without limits (cpu_ms_per_run, goal <= 30) and the cold first run (goal <= 1 s);
- with --all, also bench/cloud.py (the emulated cloud's mix) and bench/cold_start.py (import time), as printed.
With --curve 100,1000: the scaling curve without limits first (bench/engine.py's burst: runs/s, time to finished,
worker RSS). Writes <out>/scale.json and <out>/scale.md, and ends with one line per worker count:
`scale: workers=... limit_fraction=... limited_429_pct=... failed=... cp_ratio=... intake_p99_ms=... cpu_ms_per_run=...
rss_mb=...`. With --workers 2 it takes about 6 minutes here."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cpu
import critical_path
import engine
import intake
import limits
from harness import ROOT

GOALS = {
    "limit_fraction": ">= 0.95 (bar 0.9)",
    "limited_429_pct": "<= 1",
    "failed": "0",
    "cp_ratio": "<= 1.10 (bar 1.3)",
    "cp_ratio_e2e": "<= 1.10 (bar 1.3)",
    "intake_p99_ms": "<= 100 (bar 500)",
    "intake_errors": "0",
    "cpu_ms_per_run": "<= 30",
    "cold_first_run_s": "<= 1",
    "rss_mb": "<= 200",
}


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def timed(name: str, measure: Callable[[], dict[str, Any]], record: dict[str, Any]) -> dict[str, Any]:
    before, started = load(), time.monotonic()
    print(f"[scale] {name} ...", file=sys.stderr, flush=True)
    figures = measure()
    record[name] = {"figures": figures, "load average before": before, "load average after": load(),
                    "seconds": round(time.monotonic() - started, 1)}  # fmt: skip
    return figures


def printed(script: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return {"exit": result.returncode, "output": result.stdout.strip().splitlines()[-40:]}


def markdown(summary: list[dict[str, Any]], record: dict[str, Any]) -> str:
    lines = ["| figure | goal | " + " | ".join(f"{s['workers']} worker(s)" for s in summary) + " |"]
    lines.append("|---|---|" + "---|" * len(summary))
    for name, goal in GOALS.items():
        lines.append(f"| {name} | {goal} | " + " | ".join(str(s.get(name, "")) for s in summary) + " |")
    lines.append("")
    lines.append("| bench | seconds | load average before | after |")
    lines.append("|---|---|---|---|")
    for name, entry in record.items():
        loads = f"{entry['load average before']} | {entry['load average after']}"
        lines.append(f"| {name} | {entry['seconds']} | {loads} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", default="2", help="queue worker counts for the limits bench, e.g. 1,2,4")
    parser.add_argument("--runs", type=int, default=150, help="runs per limits measurement")
    parser.add_argument("--scale", type=float, default=5.0, help="time scale of the real limits")
    parser.add_argument("--incidents", type=int, default=500)
    parser.add_argument("--cpu-runs", type=int, default=40)
    parser.add_argument("--all", action="store_true", help="also the emulated cloud and import-time benches")
    parser.add_argument("--curve", default="", help="scaling curve without limits: incident counts, e.g. 100,1000")
    parser.add_argument("--only-curve", action="store_true", help="the scaling curve alone")
    parser.add_argument("--out", default=str(ROOT / ".riposte" / "bench"))
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    record: dict[str, Any] = {}
    for n in [int(c) for c in args.curve.split(",") if c]:
        timed(f"curve, {n} incidents", lambda n=n: engine.burst(n, workers=max(counts)), record)  # type: ignore[misc]
    if args.only_curve:
        print(json.dumps(record, indent=2))
        return
    path = timed("critical path", lambda: critical_path.measure(3), record)
    burst = timed("intake", lambda: {**intake.burst(args.incidents, 32, max(counts)), **intake.capacity(32)}, record)
    work = timed("cpu", lambda: cpu.measure(args.cpu_runs), record)
    summary = []
    for n in counts:
        limited = timed(f"limits, {n} worker(s)", lambda n=n: limits.measure(n, args.runs, args.scale), record)  # type: ignore[misc]
        summary.append(
            {
                "workers": n,
                "limit_fraction": limited["limit_fraction"],
                "limited_429_pct": limited["limited_429_pct"],
                "failed": limited["failed"],
                "cp_ratio": path["cp_ratio (median)"],
                "cp_ratio_e2e": path["cp_ratio_e2e (median)"],
                "intake_p99_ms": burst["intake_p99_ms"],
                "intake_errors": burst["errors"],
                "intake_cpu_ms": burst["intake_cpu_ms"],
                "capacity_per_s": burst["capacity_per_s"],
                "cpu_ms_per_run": work["worker CPU ms per run"],
                "cold_first_run_s": work["cold: worker CPU s from start through the first run"],
                "rss_mb": limited["worker peak RSS MB"],
            }
        )
    if args.all:
        timed("emulated cloud", lambda: printed("cloud.py"), record)
        timed("cold start imports", lambda: printed("cold_start.py"), record)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    document = {"summary": summary, "goals": GOALS, "benches": record}
    for suffix, text in (("json", json.dumps(document, indent=2)), ("md", markdown(summary, record))):
        (out / f"scale.{suffix}").write_text(text)
    print(markdown(summary, record))
    for line in summary:
        print("scale: " + " ".join(f"{key}={value}" for key, value in line.items()))


if __name__ == "__main__":
    main()
