"""Decoding an HTTP body into JSON under the limits, before any dialect is looked at."""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass
from typing import Any

from shared.intake.errors import IntakeError, path_to_target

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
        parsed = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError as exc:
        raise IntakeError("JsonTooDeep", f"The JSON is nested deeper than {max_depth} levels.", "body") from exc
    except json.JSONDecodeError as exc:
        raise IntakeError(
            "InvalidJson", f"The body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}.", "body"
        ) from exc
    except ValueError as exc:  # int() refuses more than sys.get_int_max_str_digits() digits; _finite_float
        raise IntakeError(
            "InvalidNumber",
            f"The body holds a number out of range: an integer of more than {sys.get_int_max_str_digits()} digits, "
            "a float beyond ±1.8e308, NaN or Infinity.",
            "body",
        ) from exc
    check_json_value(parsed, max_depth=max_depth)
    return parsed


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON.")  # Python's json accepts NaN and Infinity; JSON has neither


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("out of range")
    return value


def check_json_value(value: Any, *, max_depth: int) -> None:
    """Raises IntakeError when parsed JSON nests deeper than `max_depth` or holds a string that is not Unicode text:
    JSON's \\ud800 escapes can spell lone surrogates, which no UTF-8 response, table row or SDK call can carry.
    Iterative, so hostile input cannot blow the stack; the path to a bad string is only built when there is one."""
    stack: list[_Node] = [_Node(value, 1, None, None)]
    while stack:
        node = stack.pop()
        if isinstance(node.value, str):
            _check_text(node.value, node)
        elif isinstance(node.value, dict | list):
            if node.depth > max_depth:
                raise IntakeError("JsonTooDeep", f"The JSON is nested deeper than {max_depth} levels.", "body")
            items = node.value.items() if isinstance(node.value, dict) else enumerate(node.value)
            for key, child in items:
                entry = _Node(child, node.depth + 1, node, key)
                if isinstance(key, str):
                    _check_text(key, entry)
                stack.append(entry)


@dataclass(frozen=True, slots=True)
class _Node:
    value: Any
    depth: int
    parent: _Node | None
    key: str | int | None

    def path(self) -> str:
        parts: list[str | int] = []
        node: _Node | None = self
        while node is not None and node.key is not None:
            parts.append(node.key)
            node = node.parent
        return path_to_target(parts[::-1]) or "body"


_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_text(text: str, where: _Node) -> None:
    if _SURROGATE.search(text):
        target = _SURROGATE.sub("\N{REPLACEMENT CHARACTER}", where.path())
        message = f"'{target}' holds a lone surrogate (an unpaired \\uD800-\\uDFFF escape), which is not text."
        raise IntakeError("InvalidString", message, target)
