"""A small, strict OData v4 $filter / $orderby parser for the subset Microsoft Graph supports on the emulated
resources: eq ne gt ge lt le, in (...), startswith/endswith/contains(prop, 'x'), and/or/not, parentheses, literals
'string' (with '' escaping), true/false/null, numbers, unquoted date-times and GUIDs, and enum casts
(microsoft.graph.riskLevel'high'). The filter is compiled to a predicate; nothing is ever eval'd.

String comparisons are case-insensitive, as they are for directory objects in Graph."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


class FilterError(ValueError):
    """Syntax error: Graph answers 400 BadRequest 'Invalid filter clause'."""


class UnsupportedFilter(ValueError):
    """Valid syntax on a property or operator this resource does not filter on: 400 Request_UnsupportedQuery."""

    def __init__(self, prop: str, operator: str) -> None:
        super().__init__(f"{operator} on {prop}")
        self.prop = prop
        self.operator = operator


Predicate = Callable[[dict[str, Any]], bool]

COMPARISONS = ("eq", "ne", "gt", "ge", "lt", "le")
FUNCTIONS = ("startswith", "endswith", "contains")

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^']|'')*')
      | (?P<punct>[(),])
      | (?P<cast>[A-Za-z_][\w.]*'(?:[^']|'')*')
      | (?P<word>[A-Za-z_$@][\w.$@/]*)
      | (?P<value>[-+]?[0-9][0-9A-Za-z:.+\-]*)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str  # string | punct | cast | word | value | end
    text: str
    position: int


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        m = _TOKEN.match(text, position)
        if m is None or m.end() == position:
            raise FilterError(f"Syntax error at position {position} in '{text}'.")
        kind = m.lastgroup or "word"
        tokens.append(Token(kind, m.group(kind), m.start(kind)))
        position = m.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


@dataclass(frozen=True)
class Literal:
    value: Any
    is_datetime: bool = False


def _literal(token: Token, source: str) -> Literal:
    if token.kind == "string":
        return Literal(token.text[1:-1].replace("''", "'"))
    if token.kind == "cast":  # microsoft.graph.riskLevel'high' -> 'high'
        quoted = token.text[token.text.index("'") :]
        return Literal(quoted[1:-1].replace("''", "'"))
    if token.kind == "word":
        lowered = token.text.lower()
        if lowered in ("true", "false"):
            return Literal(lowered == "true")
        if lowered == "null":
            return Literal(None)
        if re.fullmatch(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", token.text):
            return Literal(token.text)
    if token.kind == "value":
        text = token.text
        if re.fullmatch(r"[-+]?\d+", text):
            return Literal(int(text))
        if re.fullmatch(r"[-+]?\d+\.\d+(?:[eE][-+]?\d+)?", text):
            return Literal(float(text))
        moment = parse_datetime(text)
        if moment is not None:
            return Literal(moment, is_datetime=True)
        if re.fullmatch(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", text):
            return Literal(text)
    raise FilterError(f"Syntax error: '{token.text}' at position {token.position} in '{source}' is not a literal.")


def parse_datetime(text: str) -> datetime | None:
    """ISO 8601 with 'Z' and up to 7 fractional digits (Graph's format); None if it is not one."""
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2})(?:T(\d{2}:\d{2}(?::\d{2})?)(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?", text)
    if m is None:
        return None
    date, clock, fraction, zone = m.groups()
    iso = date + ("T" + clock if clock else "T00:00:00")
    if fraction:
        iso += "." + fraction[:6].ljust(6, "0")
    iso += "+00:00" if zone in (None, "Z") else zone
    try:
        return datetime.fromisoformat(iso).astimezone(UTC)
    except ValueError:
        return None


def get_path(item: dict[str, Any], prop: str) -> Any:
    """'location/city' style property paths, matched case-insensitively like Graph does."""
    value: Any = item
    for part in prop.split("/"):
        if not isinstance(value, dict):
            return None
        if part in value:
            value = value[part]
            continue
        lowered = part.lower()
        value = next((v for k, v in value.items() if k.lower() == lowered), None)
    return value


def _normalise(value: Any, as_datetime: bool) -> Any:
    if as_datetime and isinstance(value, str):
        return parse_datetime(value)
    if isinstance(value, str):
        return value.lower()
    return value


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "eq":
        return bool(left == right)
    if op == "ne":
        return bool(left != right)
    if left is None or right is None:
        return False
    try:
        if op == "gt":
            return bool(left > right)
        if op == "ge":
            return bool(left >= right)
        if op == "lt":
            return bool(left < right)
        return bool(left <= right)
    except TypeError:
        return False


@dataclass
class FilterRules:
    """What a resource lets you filter on: property name (case-insensitive) -> allowed operators.

    `advanced` operators only work as Graph 'advanced queries' (header ConsistencyLevel: eventual)."""

    properties: dict[str, frozenset[str]]
    advanced: frozenset[str] = frozenset()

    def check(self, prop: str, operator: str, advanced_query: bool) -> str:
        canonical = next((p for p in self.properties if p.lower() == prop.lower()), None)
        if canonical is None or operator not in self.properties[canonical]:
            raise UnsupportedFilter(prop, operator)
        if operator in self.advanced and not advanced_query:
            raise UnsupportedFilter(canonical, operator)
        return canonical


class _Parser:
    def __init__(self, text: str, rules: FilterRules | None, advanced_query: bool) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0
        self.rules = rules
        self.advanced_query = advanced_query

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def take(self) -> Token:
        token = self.tokens[self.index]
        if token.kind != "end":  # the end token stays current however often it is taken
            self.index += 1
        return token

    def peek(self, offset: int) -> Token:
        return self.tokens[min(self.index + offset, len(self.tokens) - 1)]

    def keyword(self, *words: str) -> str | None:
        token = self.current
        if token.kind == "word" and token.text.lower() in words:
            self.index += 1
            return token.text.lower()
        return None

    def expect(self, text: str) -> None:
        token = self.take()
        if token.text != text:
            found = token.text or "end of input"
            raise FilterError(
                f"Syntax error: expected '{text}' at position {token.position} in '{self.text}', found '{found}'."
            )

    def prop(self, operator: str) -> str:
        token = self.take()
        if token.kind != "word" or token.text.lower() in ("and", "or", "not", "true", "false", "null"):
            found = token.text or "end of input"
            raise FilterError(
                f"Syntax error: expected a property at position {token.position} in '{self.text}', found '{found}'."
            )
        if self.rules is None:
            return token.text
        return self.rules.check(token.text, operator, self.advanced_query)

    def parse(self) -> Predicate:
        if self.current.kind == "end":
            raise FilterError("Invalid filter clause: the filter is empty.")
        predicate = self.parse_or()
        if self.current.kind != "end":
            raise FilterError(f"Syntax error at position {self.current.position} in '{self.text}'.")
        return predicate

    def parse_or(self) -> Predicate:
        parts = [self.parse_and()]
        while self.keyword("or"):
            parts.append(self.parse_and())
        if len(parts) == 1:
            return parts[0]
        return lambda item: any(p(item) for p in parts)

    def parse_and(self) -> Predicate:
        parts = [self.parse_not()]
        while self.keyword("and"):
            parts.append(self.parse_not())
        if len(parts) == 1:
            return parts[0]
        return lambda item: all(p(item) for p in parts)

    def parse_not(self) -> Predicate:
        if self.keyword("not"):
            if self.rules is not None and "not" in self.rules.advanced and not self.advanced_query:
                raise UnsupportedFilter("not", "not")
            inner = self.parse_not()
            return lambda item: not inner(item)
        return self.parse_primary()

    def parse_primary(self) -> Predicate:
        token = self.current
        if token.kind == "end":
            raise FilterError(f"Syntax error: unexpected end of input in '{self.text}'.")
        if token.text == "(":
            self.take()
            inner = self.parse_or()
            self.expect(")")
            return inner
        if token.kind == "word" and token.text.lower() in FUNCTIONS and self.peek(1).text == "(":
            return self.parse_function()
        return self.parse_comparison()

    def parse_function(self) -> Predicate:
        name = self.take().text.lower()
        self.expect("(")
        prop = self.prop(name)
        self.expect(",")
        literal = _literal(self.take(), self.text)
        self.expect(")")
        if not isinstance(literal.value, str):
            raise FilterError(f"Invalid filter clause: {name} needs a string literal.")
        needle = literal.value.lower()

        def check(item: dict[str, Any]) -> bool:
            value = get_path(item, prop)
            if not isinstance(value, str):
                return False
            value = value.lower()
            if name == "startswith":
                return value.startswith(needle)
            if name == "endswith":
                return value.endswith(needle)
            return needle in value

        return check

    def parse_comparison(self) -> Predicate:
        start = self.index
        self.take()  # the property; validated once the operator is known
        operator = self.keyword(*COMPARISONS, "in")
        if operator is None:
            token = self.current
            found = token.text or "end of input"
            raise FilterError(
                f"Syntax error: expected an operator at position {token.position} in '{self.text}', found '{found}'."
            )
        self.index = start
        prop = self.prop(operator)
        self.take()
        if operator == "in":
            self.expect("(")
            values = [_literal(self.take(), self.text)]
            while self.current.text == ",":
                self.take()
                values.append(_literal(self.take(), self.text))
            self.expect(")")
            wanted = {_normalise(v.value, False) for v in values}
            return lambda item: _normalise(get_path(item, prop), False) in wanted
        literal = _literal(self.take(), self.text)
        right = _normalise(literal.value, False) if not literal.is_datetime else literal.value
        return lambda item: _compare(operator, _normalise(get_path(item, prop), literal.is_datetime), right)


def compile_filter(text: str, rules: FilterRules | None = None, *, advanced_query: bool = False) -> Predicate:
    return _Parser(text, rules, advanced_query).parse()


def apply_orderby(items: list[dict[str, Any]], text: str, allowed: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """'prop [asc|desc], prop2 ...'. None sorts first ascending, like Graph."""
    keys: list[tuple[str, bool]] = []
    allowed_lower = {a.lower() for a in allowed} if allowed is not None else None
    for clause in text.split(","):
        words = clause.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise FilterError(f"Invalid $orderby clause: '{text}'.")
        if allowed_lower is not None and words[0].lower() not in allowed_lower:
            raise UnsupportedFilter(words[0], "orderby")
        keys.append((words[0], len(words) == 2 and words[1].lower() == "desc"))
    ordered = list(items)
    for prop, descending in reversed(keys):
        ordered.sort(key=lambda item, p=prop: _sort_key(get_path(item, p)), reverse=descending)  # type: ignore[misc]
    return ordered


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, bool | int | float):
        return (1, value)
    return (2, str(value).lower())
