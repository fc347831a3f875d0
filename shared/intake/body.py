"""Decoding an HTTP body into JSON under the limits, before any dialect is looked at."""

from __future__ import annotations

import json
from typing import Any

from shared.intake.errors import IntakeError

JSON_MEDIA_TYPES = ("application/json", "application/cloudevents+json", "application/cloudevents-batch+json")


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def decode_json_body(body: bytes, content_type: str | None, *, max_bytes: int, max_depth: int) -> Any:
    """Returns the parsed JSON or raises IntakeError with the right status (413, 415, 400)."""
    if len(body) > max_bytes:
        raise IntakeError(
            "PayloadTooLarge", f"The body is {len(body)} bytes; the limit is {max_bytes} bytes.", "body", status=413
        )
    kind = media_type(content_type)
    if kind not in JSON_MEDIA_TYPES and not kind.endswith("+json"):
        shown = kind or "none"
        raise IntakeError(
            "UnsupportedMediaType", f"Content-Type must be application/json (got {shown}).", "Content-Type", status=415
        )
    if not body.strip():
        raise IntakeError("EmptyBody", "The body is empty; a JSON payload is required.", "body")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise IntakeError("InvalidEncoding", f"The body is not valid UTF-8 (byte {exc.start}).", "body") from exc
    try:
        parsed = json.loads(text)
    except RecursionError as exc:
        raise IntakeError("JsonTooDeep", f"The JSON is nested deeper than {max_depth} levels.", "body") from exc
    except json.JSONDecodeError as exc:
        raise IntakeError(
            "InvalidJson", f"The body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}.", "body"
        ) from exc
    if json_depth(parsed) > max_depth:
        raise IntakeError("JsonTooDeep", f"The JSON is nested deeper than {max_depth} levels.", "body")
    return parsed


def json_depth(value: Any) -> int:
    """Depth of nested containers, computed without recursion so hostile input cannot blow the stack."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in node)
    return deepest
