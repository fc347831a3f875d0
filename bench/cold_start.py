"""Cold-start import cost of function_app: `python -X importtime -c "import function_app"`, repeated.

Prints the median and worst cumulative import time of function_app and the interpreter's wall time. Not a test."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = 15


def one_run() -> tuple[float, float]:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import function_app"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    wall = (time.perf_counter() - started) * 1000
    total_us = 0
    for line in result.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[2].strip() == "function_app":
            total_us = int(parts[1])
    return total_us / 1000, wall


def main() -> None:
    one_run()  # compile .pyc files first, as a deployed app has them
    imports, walls = zip(*(one_run() for _ in range(RUNS)), strict=True)
    print(f"import function_app over {RUNS} runs (python -X importtime, cumulative):")
    print(f"  median {statistics.median(imports):.0f} ms, max {max(imports):.0f} ms  (target <= 400 ms)")
    print(f"  interpreter start + import, wall: median {statistics.median(walls):.0f} ms, max {max(walls):.0f} ms")


if __name__ == "__main__":
    main()
