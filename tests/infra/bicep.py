"""Just enough Bicep reading for the consistency tests: find a declaration, take its { } or [ ] body, list its keys.

No Bicep compiler runs here (its CLI is a downloaded binary), so the tests read the text: braces and brackets are
matched while skipping strings ('...', '''...''') and comments, which is all the structure these checks need."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"

GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_OPEN = {"{": "}", "[": "]", "(": ")"}


def read(name: str) -> str:
    return (INFRA / name).read_text()


def strip_comments(text: str) -> str:
    """The text with // and /* */ comments blanked out (strings kept), so positions stay the same."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("'''", i):
            end = text.find("'''", i + 3)
            end = len(text) if end < 0 else end + 3
            out.append(text[i:end])
            i = end
        elif text[i] == "'":
            j = i + 1
            while j < len(text) and text[j] != "'":
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            end = len(text) if end < 0 else end
            out.append(" " * (end - i))
            i = end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = len(text) if end < 0 else end + 2
            out.append(re.sub(r"[^\n]", " ", text[i:end]))
            i = end
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def body_at(text: str, start: int) -> str:
    """The balanced { } / [ ] / ( ) group opening at the first bracket at or after `start`, brackets included."""
    clean = strip_comments(text)
    i = min((clean.find(c, start) for c in _OPEN if clean.find(c, start) >= 0), default=-1)
    if i < 0:
        raise ValueError("no bracket after the declaration")
    stack: list[str] = []
    j = i
    while j < len(clean):
        ch = clean[j]
        if ch == "'":
            j += 1
            while j < len(clean) and clean[j] != "'":
                j += 2 if clean[j] == "\\" else 1
        elif ch in _OPEN:
            stack.append(_OPEN[ch])
        elif stack and ch == stack[-1]:
            stack.pop()
            if not stack:
                return text[i : j + 1]
        j += 1
    raise ValueError("unbalanced brackets")


def declaration(text: str, pattern: str) -> str:
    """The body of the first declaration matching `pattern`, a regex for its first line (r"var riposteSettings")."""
    match = re.search(rf"^\s*{pattern}", text, re.MULTILINE)
    if match is None:
        raise LookupError(f"no declaration matching {pattern!r}")
    return body_at(text, match.end())


def modules(text: str, path: str) -> dict[str, str]:
    """Each `module NAME 'path' = ...` call of one module file, by symbolic name, with its body."""
    found: dict[str, str] = {}
    for match in re.finditer(rf"^module\s+(\w+)\s+'{re.escape(path)}'\s*=\s*", text, re.MULTILINE):
        start = match.end()
        if text.startswith("if", start):  # a condition: the body follows its ( )
            start += len(body_at(text, start)) + text[start:].index("(")
        found[match.group(1)] = body_at(text, start)
    return found


def top_level_keys(body: str) -> list[str]:
    """The keys of an object literal's outer level."""
    clean = strip_comments(body).strip()
    if not clean.startswith("{"):
        raise ValueError("not an object literal")
    keys: list[str] = []
    depth = 0
    i = 0
    line_start = True
    while i < len(clean):
        ch = clean[i]
        if depth == 1 and line_start and not ch.isspace():
            match = re.match(r"('[^']+'|[A-Za-z_$][\w$]*)\s*:", clean[i:])
            if match:
                keys.append(match.group(1).strip("'"))
        if not ch.isspace():
            line_start = False
        if ch == "'":
            j = i + 1
            while j < len(clean) and clean[j] != "'":
                j += 2 if clean[j] == "\\" else 1
            i = j + 1
            continue
        if ch in _OPEN:
            depth += 1
        elif ch in _OPEN.values():
            depth -= 1
        elif ch == "\n":
            line_start = True
        i += 1
    return keys


def params(text: str) -> dict[str, str | None]:
    """Each `param NAME TYPE [= default]` of a file, with the default's text (None when the parameter is required)."""
    found: dict[str, str | None] = {}
    for match in re.finditer(r"^param\s+(\w+)\s+\w+(\s*=\s*)?", text, re.MULTILINE):
        if match.group(2) is None:
            found[match.group(1)] = None
            continue
        rest = text[match.end() :]
        if rest[:1] in _OPEN:
            found[match.group(1)] = body_at(text, match.end())
        else:
            found[match.group(1)] = rest.split("\n", 1)[0].strip()
    return found
