"""Timestamps as the services write them: 'Z' suffix, 0 to 7 fractional digits."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from shared.intake.errors import IntakeError

_FRACTION = re.compile(r"\.([0-9]+)")


def parse_timestamp(value: str) -> datetime:
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text, count=1)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise IntakeError("InvalidValue", f"'{value}' is not an ISO 8601 timestamp.", "") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
