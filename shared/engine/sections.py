"""A run's findings as compact tables: the risk score and the details of each finding (its lists of records: threat
intelligence matches, watchlist items, unusual activities, peers, query rows), as plain data.

The incident comment renders them as SafeHtml and `riposte runs show` as terminal tables, from the same functions, so
both show the same thing. They read the run as JSON (steps with kind, id, uses, status, entity, finding, outcome),
which is what the API returns and what a Run dumps to. Sentinel keeps a comment within 30,000 characters: `fit` trims
the largest tables first, halving their rows, and each trimmed table says how many rows it shows."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

MAX_CELL = 80
MAX_COLUMNS = 6
MAX_ROWS = 10


@dataclass(frozen=True)
class Section:
    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    total: int  # rows before any trimming

    @property
    def note(self) -> str:
        if len(self.rows) == self.total:
            return ""
        return f"Showing {len(self.rows)} of {self.total} rows; the run record holds them all."

    def size(self) -> int:
        """About the characters it takes as HTML (a cell's markup and escaping included)."""
        cells = sum(len(c) + 9 for row in self.rows for c in row) + 9 * len(self.rows)
        return len(self.title) + sum(len(h) + 9 for h in self.headers) + cells + len(self.note) + 40


def cell(value: Any) -> str:
    if isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
        text = ", ".join(str(v) for v in value)
    else:
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def score_section(scored: dict[str, Any]) -> Section:
    rows = tuple((f"{p['points']:+d}", str(p["reason"]), str(p["finding"]), cell(p["on"])) for p in scored["points"])
    return Section(f"Risk score: {scored['total']}", ("points", "reason", "finding", "on"), rows, len(rows))


def target_of(step: dict[str, Any]) -> str:
    target = (step.get("outcome") or {}).get("target") or {}
    entity = step.get("entity") or {}
    return str(target.get("display") or target.get("id") or entity.get("friendlyName") or entity.get("name") or "")


def _records(key: str, records: list[dict[str, Any]], title: str) -> Section:
    columns: list[str] = []
    for record in records[:MAX_ROWS]:
        for name, value in record.items():
            if name not in columns and not isinstance(value, dict) and len(columns) < MAX_COLUMNS:
                columns.append(name)
    rows = tuple(tuple(cell(r.get(c)) if r.get(c) is not None else "" for c in columns) for r in records[:MAX_ROWS])
    return Section(f"{title}: {key}", tuple(columns), rows, len(records))


def detail_sections(steps: list[dict[str, Any]]) -> list[Section]:
    """One table per list of records in each finished enrichment's finding."""
    sections: list[Section] = []
    for step in steps:
        if step.get("kind") != "enrich" or step.get("status") != "done":
            continue
        data = (step.get("finding") or {}).get("data") or {}
        title = f"{step.get('uses')} on {target_of(step)}" if target_of(step) else str(step.get("uses"))
        for key, value in data.items():
            if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                sections.append(_records(key, value, title))
    return sections


def fit(sections: list[Section], budget: int, measure: Callable[[Section], int] = Section.size) -> list[Section]:
    """The sections within `budget` characters as `measure` counts them (the comment passes its rendered length):
    the largest is halved, then emptied, until they fit."""
    fitted = list(sections)
    while fitted and sum(measure(s) for s in fitted) > budget:
        index = max(range(len(fitted)), key=lambda i: measure(fitted[i]))
        largest = fitted[index]
        if not largest.rows:
            break
        fitted[index] = replace(largest, rows=largest.rows[: len(largest.rows) // 2])
    return fitted
