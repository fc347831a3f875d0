"""Explicit rows (logAnalytics.tables in the tenant document) and the moments a document may write: datetimes, ISO
strings, 'now', 'now-2h' or 'ago(2h)'."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from local.cloud.loggen.schemas import TABLES, Row

_AGO = re.compile(r"^\s*ago\(\s*(\d+(?:\.\d+)?)\s*(d|h|m|s|ms)\s*\)\s*$", re.IGNORECASE)
# the seed's own relative form (local/cloud/seed.py): now-3h, now - 2d, now+90m
_NOW_OFFSET = re.compile(r"^\s*now\s*([+-])\s*(\d+(?:\.\d+)?)\s*(d|h|m|s|ms)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_moment(value: Any, now: datetime) -> datetime | None:
    """A timestamp from the document: a datetime/date, an ISO string, 'now', 'now-2h' or 'ago(2h)'; else None."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime.combine(value, datetime.min.time(), UTC)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.lower() == "now":
        return now
    match = _AGO.match(text)
    if match:
        return now - timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()])
    offset = _NOW_OFFSET.match(text)
    if offset:
        seconds = float(offset.group(2)) * _UNIT_SECONDS[offset.group(3).lower()]
        return now + timedelta(seconds=seconds if offset.group(1) == "+" else -seconds)
    return parse_iso(text)


def parse_iso(text: str) -> datetime | None:
    """ISO 8601 with 'Z' and up to 7 fractional digits (Kusto and Graph both write 7)."""
    match = re.match(r"^(\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?)(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})?$", text)
    if not match:
        return None
    base, fraction, zone = match.groups()
    try:
        moment = datetime.fromisoformat(base + (f".{fraction[:6].ljust(6, '0')}" if fraction else ""))
    except ValueError:
        return None
    if zone and zone != "Z":
        moment = datetime.fromisoformat(f"{moment.isoformat()}{zone}")
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def explicit_row(table: str, item: dict[str, Any], now: datetime, workspace_id: str) -> Row:
    kinds = dict(TABLES.get(table, ()))
    row: Row = {"TenantId": workspace_id}
    for name, value in item.items():
        kind = kinds.get(name) or ("datetime" if name == "TimeGenerated" else None)
        if kind == "datetime" or (kind is None and isinstance(value, datetime | date)):
            row[name] = parse_moment(value, now)
        elif kind == "dynamic" and isinstance(value, str):
            try:
                row[name] = json.loads(value)
            except ValueError:
                row[name] = value
        else:
            row[name] = value
    if row.get("TimeGenerated") is None:
        row["TimeGenerated"] = now  # as ingestion does when the record carries no usable time
    row["Type"] = table
    return row
