"""The checkov gate (`make infra-scan`): a scan passes only when it looked at the templates and found nothing wrong.

checkov itself runs in make infra-scan (its own virtualenv); these tests feed the gate reports shaped like checkov's
JSON output to show each way a scan is refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tools import checkov_gate


def report(
    *,
    passed: int = 22,
    resources: int = 49,
    failed: list[dict[str, Any]] | None = None,
    skipped: list[dict[str, Any]] | None = None,
    parsing_errors: list[str] | None = None,
) -> dict[str, Any]:
    failed = failed or []
    skipped = skipped or []
    return {
        "check_type": "bicep",
        "results": {
            "passed_checks": [],
            "failed_checks": failed,
            "skipped_checks": skipped,
            "parsing_errors": parsing_errors or [],
        },
        "summary": {
            "passed": passed,
            "failed": len(failed),
            "skipped": len(skipped),
            "parsing_errors": len(parsing_errors or []),
            "resource_count": resources,
            "checkov_version": "3.3.30",
        },
    }


def skip(reason: str) -> dict[str, Any]:
    return {
        "check_id": "CKV_AZURE_35",
        "resource": "Microsoft.Storage/storageAccounts.account",
        "check_result": {"result": "SKIPPED", "suppress_comment": reason},
    }


def test_a_clean_scan_with_reasoned_skips_passes() -> None:
    verdict = checkov_gate.judge(report(skipped=[skip("public endpoint needed; shared keys are off")]))
    assert verdict.ok, verdict.problems
    assert verdict.skips == [
        "CKV_AZURE_35 on Microsoft.Storage/storageAccounts.account: public endpoint needed; shared keys are off"
    ]


def test_a_failed_check_fails_the_scan() -> None:
    failure = {
        "check_id": "CKV_AZURE_44",
        "check_name": "Ensure Storage Account is using the latest version of TLS encryption",
        "resource": "Microsoft.Storage/storageAccounts.account",
        "file_path": "/modules/storage.bicep",
        "file_line_range": [28, 70],
    }
    verdict = checkov_gate.judge(report(failed=[failure]))
    assert not verdict.ok
    assert verdict.problems == [
        "FAILED CKV_AZURE_44 Ensure Storage Account is using the latest version of TLS encryption "
        "(Microsoft.Storage/storageAccounts.account, /modules/storage.bicep:28-70)"
    ]


def test_a_file_checkov_could_not_parse_fails_the_scan() -> None:
    verdict = checkov_gate.judge(report(parsing_errors=["infra/main.bicep"]))
    assert verdict.problems == ["checkov could not parse infra/main.bicep"]


def test_a_skip_without_a_reason_fails_the_scan() -> None:
    for reason in ("", "No comment provided"):
        verdict = checkov_gate.judge(report(skipped=[skip(reason)]))
        label = "CKV_AZURE_35 on Microsoft.Storage/storageAccounts.account"
        assert verdict.problems == [f"skipped without a reason: {label}"]


def test_a_scan_that_read_nothing_is_not_a_pass() -> None:
    # What checkov prints for a directory it cannot read: no failures, because no checks.
    empty = {"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0, "resource_count": 0}
    verdict = checkov_gate.judge(empty)
    assert not verdict.ok
    assert any("not a scan" in problem for problem in verdict.problems)
    assert not checkov_gate.judge(report(passed=3)).ok
    assert not checkov_gate.judge(report(resources=5)).ok


def test_reports_of_several_frameworks_are_added_up() -> None:
    verdict = checkov_gate.judge([report(passed=10, resources=20), report(passed=10, resources=25)])
    assert verdict.ok
    assert (verdict.passed, verdict.resources) == (20, 45)


def test_main_reads_a_report_file(tmp_path: Path) -> None:
    path = tmp_path / "checkov.json"
    path.write_text(json.dumps(report()))
    assert checkov_gate.main([str(path)]) == 0
    path.write_text(json.dumps(report(parsing_errors=["x.bicep"])))
    assert checkov_gate.main([str(path)]) == 1
    path.write_text("checkov crashed before printing JSON")
    assert checkov_gate.main([str(path)]) == 2
