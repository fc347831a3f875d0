"""Named KQL queries kept as data in playbooks/queries/*.kql.

A query file starts with a header of `//` comments that declares it:

    // name: signin_summary
    // description: Failed and successful sign-ins of one user
    // param upn: upn
    // param lookback: timespan = 7d
    SigninLogs
    | where TimeGenerated > ago({lookback})
    | where UserPrincipalName =~ {upn}

`{name}` placeholders are replaced only by `literals.render` output for a declared parameter; a placeholder that is
not declared, or a declared parameter that is never used, is an error at load time.

A query written in a playbook (loganalytics.run_query's `kql`) takes the same header, without the name: it is trusted
text like the playbook itself, and its values still come only through its declared parameters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.kql.literals import KqlValueError, ParamType, render

QUERIES_DIR = Path(__file__).resolve().parents[2] / "playbooks" / "queries"
_HEADER = re.compile(r"^//\s*(name|description|param)\s*:?\s*(.*)$")
_PARAM = re.compile(r"^(\w+)\s*:\s*(list\[\w+\]|\w+)\s*(?:=\s*(\S+))?$")
_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


class QueryError(ValueError):
    pass


@dataclass(frozen=True)
class Param:
    name: str
    type: str  # a ParamType value, or list[<ParamType>]
    default: str | None = None


@dataclass(frozen=True)
class NamedQuery:
    name: str
    description: str
    text: str
    params: dict[str, Param] = field(default_factory=dict)

    def render(self, **values: Any) -> str:
        unknown = set(values) - set(self.params)
        if unknown:
            raise KqlValueError(sorted(unknown)[0], f"not a parameter of query {self.name}")
        rendered: dict[str, str] = {}
        for param in self.params.values():
            value = values.get(param.name, param.default)
            if value is None:
                raise KqlValueError(param.name, f"required by query {self.name}")
            rendered[param.name] = render(param.name, param.type, value)
        return _PLACEHOLDER.sub(lambda m: rendered[m.group(1)], self.text)


def parse_query(source: str, origin: str, default_name: str = "") -> NamedQuery:
    name, description = default_name, ""
    params: dict[str, Param] = {}
    lines = source.splitlines()
    body_start = 0
    for index, line in enumerate(lines):
        match = _HEADER.match(line.strip())
        if not match:
            body_start = index
            break
        key, value = match.group(1), match.group(2).strip()
        if key == "name":
            name = value
        elif key == "description":
            description = value
        else:
            param = _PARAM.match(value)
            if not param:
                raise QueryError(f"{origin}: cannot read parameter declaration {value!r}")
            kind = param.group(2)
            try:
                ParamType(kind.removeprefix("list[").removesuffix("]"))
            except ValueError:
                raise QueryError(f"{origin}: unknown parameter type {kind!r}") from None
            params[param.group(1)] = Param(param.group(1), kind, param.group(3))
    text = "\n".join(lines[body_start:]).strip()
    if not name or not text:
        raise QueryError(f"{origin}: a query needs a '// name:' header and a body")
    used = set(_PLACEHOLDER.findall(text))
    if used - set(params):
        raise QueryError(f"{origin}: placeholder {{{sorted(used - set(params))[0]}}} is not a declared parameter")
    if set(params) - used:
        raise QueryError(f"{origin}: parameter {sorted(set(params) - used)[0]} is declared but never used")
    return NamedQuery(name, description, text, params)


def parse_inline(source: str) -> NamedQuery:
    """A query written in a playbook: `// param` declarations (optional) then the body."""
    return parse_query(source, "the playbook's query", default_name="inline")


def load_queries(directory: Path = QUERIES_DIR) -> dict[str, NamedQuery]:
    queries: dict[str, NamedQuery] = {}
    for path in sorted(directory.glob("*.kql")):
        query = parse_query(path.read_text(encoding="utf-8"), path.name)
        if query.name in queries:
            raise QueryError(f"{path.name}: a query named {query.name} already exists")
        queries[query.name] = query
    return queries
