"""The write-back's tables: the risk score, each finding's records, and trimming the largest tables first so the
comment stays within Sentinel's 30,000 characters with a note on every table that lost rows."""

from __future__ import annotations

from typing import Any

from shared.engine.model import Run, StepState, StepStatus
from shared.engine.sections import MAX_ROWS, Section, detail_sections, fit, score_section
from shared.engine.writeback import summary
from shared.safehtml import MAX_COMMENT_CHARS


def _step(step_id: str, data: dict[str, Any], entity: dict[str, Any] | None = None) -> StepState:
    return StepState(
        id=step_id,
        step=step_id.split(".")[0],
        kind="enrich",
        uses="loganalytics.run_query",
        status=StepStatus.DONE,
        entity=entity,
        finding={"enricher": "loganalytics.run_query", "ok": True, "data": data},
    )


def test_each_list_of_records_is_a_table_of_its_first_rows_and_columns() -> None:
    rows = [
        {"a": i, "b": "x" * 200, "c": [1, 2], "nested": {"k": 1}, "d": 1, "e": 2, "f": 3, "g": 4} for i in range(25)
    ]
    step = _step("hunt.0", {"rows": rows, "rowCount": 25, "ips": ["1.2.3.4"]}, {"friendlyName": "203.0.113.66"})
    [section] = detail_sections([step.model_dump(mode="json", by_alias=True)])
    assert section.title == "loganalytics.run_query on 203.0.113.66: rows"
    assert section.headers == ("a", "b", "c", "d", "e", "f")  # six columns, nested bags left out
    assert len(section.rows) == MAX_ROWS and section.total == 25 and section.note.startswith("Showing 10 of 25")
    assert section.rows[0][1].endswith("…") and len(section.rows[0][1]) == 80 and section.rows[0][2] == "1, 2"


def test_fit_trims_the_largest_tables_first() -> None:
    big = Section("big", ("x",), tuple((f"{'y' * 70}{i}",) for i in range(10)), 400)
    small = Section("small", ("x",), (("z",),), 1)
    fitted = fit([big, small], budget=500)
    assert sum(s.size() for s in fitted) <= 500
    assert fitted[1] == small and 0 < len(fitted[0].rows) < 10 and fitted[0].note


def test_a_huge_run_still_comments_within_the_limit_with_notes() -> None:
    records = [{"peer": f"10.0.{i // 250}.{i % 250}", "detail": "<b>" + "q" * 300} for i in range(10)]
    steps = [_step(f"hunt.{n}", {"rows": records}, {"friendlyName": f"host-{n}"}) for n in range(40)]
    run = Run(id="r", playbook="p", incident={}, created_at=0.0, updated_at=0.0, steps=steps)
    scored = {"total": 40, "points": [{"points": 40, "reason": "<TI>", "finding": "hunt.0", "on": "host-0"}]}
    markup, omitted = summary(run, 0.0, scored).render()
    assert omitted == 0 and len(markup) <= MAX_COMMENT_CHARS
    assert "Risk score: 40" in markup and "&lt;TI&gt;" in markup and "<b>" not in markup
    assert "Showing" in markup and "the run record holds them all" in markup


def test_the_score_section_signs_points() -> None:
    scored = {"total": 20, "points": [{"points": 40, "reason": "r", "finding": "f.0", "on": "x"},
                                      {"points": -20, "reason": "t", "finding": "g.0", "on": "y"}]}  # fmt: skip
    assert score_section(scored).rows == (("+40", "r", "f.0", "x"), ("-20", "t", "g.0", "y"))


def test_riposte_runs_show_prints_the_same_tables(capsys) -> None:
    from riposte_cli import main as cli

    step = _step("ti_ip.0", {"matches": [{"table": "ThreatIntelIndicators", "confidence": 90}]}, {"friendlyName": "ip"})
    scored = {"total": 40, "points": [{"points": 40, "reason": "TI names it", "finding": "ti_ip.0", "on": "ip"}]}
    run = {
        "steps": [
            step.model_dump(mode="json", by_alias=True),
            {"id": "writeback", "kind": "writeback", "outcome": {"writes": [], "score": scored}},
        ]
    }
    cli.console.width = 200
    cli.show_findings(run)
    printed = capsys.readouterr().out
    assert "Risk score: 40" in printed and "+40" in printed and "TI names it" in printed
    assert "loganalytics.run_query on ip: matches" in printed and "ThreatIntelIndicators" in printed
