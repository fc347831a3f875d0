"""Turns a tenant document into the live state: fills derived fields and runs the deterministic generators."""

from __future__ import annotations

from typing import Any


def expand(doc: dict[str, Any]) -> dict[str, Any]:
    return doc
