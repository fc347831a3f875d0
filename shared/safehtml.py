"""Markup for incident comments that cannot carry untrusted markup.

SafeHtml is made only by constructors that escape every string they are given (text, heading, table, bullets, https
link); there is no way to turn a markup string into one, and one cannot come from JSON or YAML. The engine builds the
write-back summary with it; sentinel.add_comment renders it within Sentinel's 30,000-character limit."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

MAX_COMMENT_CHARS = 30_000  # Sentinel's limit on one comment's message
_TEXT_CHUNK = 200  # untrusted text is escaped in chunks this long, so a cut never splits an entity such as &amp;
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class _Block:
    """One element: `head` and `tail` wrap `items`, complete pieces that can be dropped from the end when cutting."""

    head: str
    items: tuple[str, ...]
    tail: str

    def render(self, count: int | None = None) -> str:
        return self.head + "".join(self.items[:count]) + self.tail


class SafeHtml:
    """HTML for an incident comment, made only by the constructors below, each of which escapes every string it is
    given. There is deliberately no way to make one from a markup string, and a SafeHtml cannot come from JSON or
    YAML: untrusted text (titles, entity names, query results) never becomes markup."""

    __slots__ = ("_blocks",)

    def __init__(self, *blocks: _Block) -> None:
        self._blocks = blocks

    def __add__(self, other: SafeHtml) -> SafeHtml:
        if not isinstance(other, SafeHtml):
            return NotImplemented
        return SafeHtml(*self._blocks, *other._blocks)

    def __str__(self) -> str:
        return "".join(block.render() for block in self._blocks)

    def __repr__(self) -> str:
        return f"SafeHtml({len(self._blocks)} blocks, {len(str(self))} characters)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SafeHtml) and self._blocks == other._blocks

    def __hash__(self) -> int:
        return hash(self._blocks)

    @classmethod
    def text(cls, value: str) -> SafeHtml:
        """A paragraph of plain text; line breaks are kept."""
        cleaned = CONTROL_CHARACTERS.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))
        if not cleaned:
            return cls()
        chunks = tuple(
            html.escape(cleaned[i : i + _TEXT_CHUNK]).replace("\n", "<br>") for i in range(0, len(cleaned), _TEXT_CHUNK)
        )
        return cls(_Block("<p>", chunks, "</p>"))

    @classmethod
    def heading(cls, value: str, level: int = 3) -> SafeHtml:
        level = min(max(level, 1), 6)
        return cls(_Block(f"<h{level}>", (_escape(value),), f"</h{level}>"))

    @classmethod
    def table(cls, headers: Sequence[str], rows: Iterable[Sequence[object]]) -> SafeHtml:
        head = "<table><tr>" + "".join(f"<th>{_escape(h)}</th>" for h in headers) + "</tr>"
        cells = tuple("<tr>" + "".join(f"<td>{_escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
        return cls(_Block(head, cells, "</table>"))

    @classmethod
    def bullets(cls, items: Iterable[object]) -> SafeHtml:
        return cls(_Block("<ul>", tuple(f"<li>{_escape(item)}</li>" for item in items), "</ul>"))

    @classmethod
    def link(cls, label: str, url: str) -> SafeHtml:
        """A paragraph with one link; only https URLs (no javascript:, data: or relative links)."""
        if not url.startswith("https://") or any(c.isspace() or c in "<>\"'`" for c in url):
            raise ValueError("a link must be an https URL without spaces or quotes")
        return cls(_Block("<p>", (f'<a href="{html.escape(url, quote=True)}">{_escape(label)}</a>',), "</p>"))

    def render(self, limit: int = MAX_COMMENT_CHARS) -> tuple[str, int]:
        """The markup within `limit` characters and how many characters of the full markup were left out. Cuts
        between blocks or between a block's items, so every element stays closed, and ends with a note."""
        full = str(self)
        if len(full) <= limit:
            return full, 0
        budget = limit - len(_truncation_note(len(full), len(full)))
        parts: list[str] = []
        used = 0
        for block in self._blocks:
            whole = block.render()
            if used + len(whole) <= budget:
                parts.append(whole)
                used += len(whole)
                continue
            room = budget - used - len(block.head) - len(block.tail)
            count = 0
            for item in block.items:
                if len(item) > room:
                    break
                room -= len(item)
                count += 1
            if count:
                parts.append(block.render(count))
            break
        shown = "".join(parts)
        omitted = len(full) - len(shown)
        return shown + _truncation_note(omitted, len(full)), omitted

    # pydantic: a SafeHtml field accepts SafeHtml instances only (never a string, never JSON input)
    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.is_instance_schema(cls, serialization=core_schema.to_string_ser_schema())

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return {"type": "string", "description": "In-process only: markup built by shared.safehtml.SafeHtml"}


def _escape(value: object) -> str:
    return html.escape(CONTROL_CHARACTERS.sub("", str(value)), quote=True)


def _truncation_note(omitted: int, total: int) -> str:
    return (
        f"<p><em>Truncated to Sentinel's {MAX_COMMENT_CHARS:,}-character comment limit: {omitted:,} of {total:,} "
        "characters are not shown. The run record holds the full text.</em></p>"
    )
