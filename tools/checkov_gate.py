"""Reads checkov's JSON report of infra/ and decides whether the scan passed (`make infra-scan`).

    python -m tools.checkov_gate REPORT.json

A report passes when no check failed, every file parsed, every skip carries a written reason, and the scan really
looked at the templates: a checkov that parses nothing also fails nothing, so a floor on the resources and checks it
evaluated turns a silent non-scan into a failure."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Floors, a little under what infra/ gives today (49 resources, 22 passing checks with checkov 3.3.30): raise them as
# the templates grow; a drop below means checkov stopped reading something.
MIN_RESOURCES = 40
MIN_PASSED = 18


@dataclass
class Verdict:
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    resources: int = 0
    problems: list[str] = field(default_factory=list)
    skips: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _reports(document: Any) -> list[dict[str, Any]]:
    # One framework gives an object; several give a list of them. An empty scan gives an empty summary object.
    if isinstance(document, list):
        return [r for r in document if isinstance(r, dict)]
    if isinstance(document, dict):
        return [document]
    raise ValueError("not a checkov JSON report")


def judge(document: Any, *, min_resources: int = MIN_RESOURCES, min_passed: int = MIN_PASSED) -> Verdict:
    verdict = Verdict()
    for report in _reports(document):
        summary = report.get("summary", report)
        results = report.get("results", {})
        verdict.passed += int(summary.get("passed", 0))
        verdict.failed += int(summary.get("failed", 0))
        verdict.skipped += int(summary.get("skipped", 0))
        verdict.resources += int(summary.get("resource_count", 0))
        for path in results.get("parsing_errors", []):
            verdict.problems.append(f"checkov could not parse {path}")
        for check in results.get("failed_checks", []):
            where = f"{check.get('file_path')}:{'-'.join(map(str, check.get('file_line_range', [])))}"
            name = f"{check.get('check_id')} {check.get('check_name')}"
            verdict.problems.append(f"FAILED {name} ({check.get('resource')}, {where})")
        for check in results.get("skipped_checks", []):
            reason = str(check.get("check_result", {}).get("suppress_comment") or "").strip()
            label = f"{check.get('check_id')} on {check.get('resource')}"
            if not reason or reason.lower() == "no comment provided":
                verdict.problems.append(f"skipped without a reason: {label}")
            verdict.skips.append(f"{label}: {reason}")
    if verdict.failed and not any(p.startswith("FAILED") for p in verdict.problems):
        verdict.problems.append(f"{verdict.failed} failed checks")
    if verdict.resources < min_resources:
        verdict.problems.append(f"checkov read {verdict.resources} resources, fewer than {min_resources}: not a scan")
    if verdict.passed < min_passed:
        verdict.problems.append(f"{verdict.passed} checks passed, fewer than {min_passed}: not a scan")
    return verdict


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    args = parser.parse_args(argv)
    try:
        verdict = judge(json.loads(args.report.read_text()))
    except (OSError, ValueError) as error:
        print(f"checkov gate: cannot read {args.report}: {error}", file=sys.stderr)
        return 2
    print(
        f"checkov: {verdict.resources} resources, {verdict.passed} passed, {verdict.failed} failed, "
        f"{verdict.skipped} skipped with a reason"
    )
    for problem in verdict.problems:
        print(f"  {problem}", file=sys.stderr)
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main())
