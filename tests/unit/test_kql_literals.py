"""shared.kql: the literal builder and the named queries.

The round-trip properties are checked twice: against a decoder written from Kusto's own rules (Kusto.Language's
KustoFacts: in a single-quoted literal a backslash escapes \\, ', ", n, r, t; a raw line break ends the literal), and
by evaluating `print x = <literal>` with duckdb-kql, the engine behind the emulated Log Analytics."""

from __future__ import annotations

import ipaddress
import re

import duckdb_kql
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.kql import KqlValueError, ParamType, load_queries, render
from shared.kql.literals import string_literal
from shared.kql.queries import QueryError, parse_query

_DISALLOWED = {chr(c) for c in range(0x20)} - {"\n", "\r", "\t"} | {"\x7f"}
# Any text the builder accepts: every code point UTF-8 can carry (no surrogates) but the refused control characters.
accepted_text = st.text(alphabet=st.characters(codec="utf-8", blacklist_characters="".join(_DISALLOWED)), max_size=300)
hostile_text = st.text(
    alphabet=st.sampled_from(list("'\"\\\n\r\t|;/*{}()=<>@ \u2019\uff07\u02bc\u200b\u2028ab")), max_size=60
)
_CONNECTION = duckdb_kql.connect()


def kusto_decode(literal: str) -> str:
    """A single-quoted Kusto literal's value; AssertionError if the text is not exactly one such literal."""
    assert len(literal) >= 2 and literal[0] == "'" and literal[-1] == "'", literal
    out: list[str] = []
    escapes = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "r": "\r", "t": "\t"}
    i = 1
    while i < len(literal) - 1:
        c = literal[i]
        assert c not in "\r\n", "a raw line break would end the literal"
        assert c != "'", "an unescaped quote ends the literal early"
        if c == "\\":
            assert i + 1 < len(literal) - 1, "a trailing backslash escapes the closing quote"
            out.append(escapes[literal[i + 1]])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def evaluate(literal: str) -> object:
    translated = duckdb_kql.to_sql(f"print x = {literal}, marker = 1")
    if translated.parameters:
        rows = _CONNECTION.execute(str(translated), translated.parameters).fetchall()
    else:
        rows = _CONNECTION.execute(str(translated)).fetchall()
    assert len(rows) == 1 and len(rows[0]) == 2 and rows[0][1] == 1  # still one print of two columns
    return rows[0][0]


# ------------------------------------------------------------------------------------------------ string literals


@settings(max_examples=400, deadline=None)
@given(accepted_text)
def test_any_text_round_trips_through_kustos_rules(value: str) -> None:
    assert kusto_decode(string_literal(value)) == value


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(accepted_text, hostile_text))
def test_any_text_round_trips_through_the_kql_engine(value: str) -> None:
    assert evaluate(string_literal(value)) == value


@settings(max_examples=200, deadline=None)
@given(hostile_text)
def test_a_rendered_text_parameter_is_one_literal(value: str) -> None:
    rendered = render("value", ParamType.TEXT, value)
    assert kusto_decode(rendered) == value
    assert "\n" not in rendered and "\r" not in rendered


@pytest.mark.parametrize(
    "value",
    [
        "it's",
        "trailing\\",
        "\\",
        "\\'",
        "' or 1==1 //",
        "x'; let y = 1; SigninLogs //",
        "' | union SigninLogs | where '1' == '1",
        "a\nb\r\nc\td",
        "/* c */ // d",
        "\u2019\uff07\u02bc\u201c\u201d",
        "zero\u200bwidth\ufeff\u2028\u2029\x85",
        "{lookback}",
        "'" * 4096,
    ],
)
def test_hostile_values_stay_inside_the_literal(value: str) -> None:
    literal = string_literal(value)
    assert kusto_decode(literal) == value
    assert evaluate(literal) == value


@pytest.mark.parametrize("value", ["nul\x00", "bell\x07", "esc\x1b[31m", "del\x7f", "vt\x0b", "ff\x0c"])
def test_control_characters_are_refused(value: str) -> None:
    with pytest.raises(KqlValueError, match="control characters"):
        render("account", ParamType.TEXT, value)


def test_text_longer_than_the_limit_is_refused() -> None:
    assert render("t", "text", "a" * 4096) == "'" + "a" * 4096 + "'"
    with pytest.raises(KqlValueError, match="longer than 4096"):
        render("t", "text", "a" * 4097)


def test_text_keeps_its_whitespace_exactly() -> None:
    assert render("t", "text", "  x  ") == "'  x  '"


# ------------------------------------------------------------------------------------------------ typed values


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("upn", "adele.vance@contoso.com", "'adele.vance@contoso.com'"),
        ("upn", " o'brien@contoso.com ", "'o\\'brien@contoso.com'"),  # a quote is legal in a UPN: escaped
        ("upn", "guest_fabrikam.com#EXT#@contoso.onmicrosoft.com", "'guest_fabrikam.com#EXT#@contoso.onmicrosoft.com'"),
        ("guid", "1C9F2B8E-4A3D-4E6F-8B1C-2D3E4F5A6B01", "'1C9F2B8E-4A3D-4E6F-8B1C-2D3E4F5A6B01'"),
        ("ip", "203.0.113.66", "'203.0.113.66'"),
        ("ip", "2001:DB8:0:0::1", "'2001:db8::1'"),
        ("ip", "::ffff:203.0.113.66", "'203.0.113.66'"),
        ("hostname", "vm-web-01.contoso.local", "'vm-web-01.contoso.local'"),
        ("hash", "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08",
         "'9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'"),
        ("hash", "d41d8cd98f00b204e9800998ecf8427e", "'d41d8cd98f00b204e9800998ecf8427e'"),
        ("timespan", "7d", "7d"),
        ("timespan", "30m", "30m"),
        ("int", 42, "42"),
    ],
)  # fmt: skip
def test_typed_values_are_validated_and_normalised(kind: str, value: object, expected: str) -> None:
    assert render("p", kind, value) == expected


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("upn", "adele.vance"),
        ("upn", "x' or 1==1 //@contoso.com"),
        ("upn", "a@b"),
        ("upn", "a@contoso.com\n| take 1"),
        ("guid", "1c9f2b8e-4a3d-4e6f-8b1c-2d3e4f5a6b0"),
        ("guid", "1c9f2b8e4a3d4e6f8b1c2d3e4f5a6b01' or 1==1"),
        ("ip", "203.0.113.256"),
        ("ip", "203.0.113.66' or 1==1 //"),
        ("ip", "fe80::1%eth0' | union SigninLogs //"),  # Python takes any text as an IPv6 zone
        ("ip", "fe80::1%eth0"),
        ("hostname", "vm-web-01; SigninLogs"),
        ("hostname", "-leading-dash"),
        ("hostname", "a" * 64),
        ("hash", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0"),
        ("hash", "md5:d41d8cd98f00b204e9800998ecf8427e"),
        ("timespan", "7d) or (1==1"),
        ("timespan", "7 days"),
        ("timespan", "\N{ARABIC-INDIC DIGIT SEVEN}d"),  # \d would take it; Kusto would not
        ("int", "42"),
        ("int", True),
        ("text", 42),
    ],
)
def test_values_that_are_not_of_their_type_are_refused(kind: str, value: object) -> None:
    with pytest.raises(KqlValueError):
        render("p", kind, value)


@settings(max_examples=300, deadline=None)
@given(hostile_text)
def test_hostile_text_never_passes_a_typed_validator_unescaped(value: str) -> None:
    for kind in (ParamType.UPN, ParamType.GUID, ParamType.IP, ParamType.HOSTNAME, ParamType.HASH):
        try:
            rendered = render("p", kind, value)
        except KqlValueError:
            continue
        assert kusto_decode(rendered).strip() == kusto_decode(rendered)  # accepted values are trimmed
        if kind is ParamType.IP:
            ipaddress.ip_address(kusto_decode(rendered))


def test_lists_become_dynamic_arrays_of_validated_literals() -> None:
    assert render("ips", "list[ip]", ["203.0.113.66", "2001:db8::1"]) == "dynamic(['203.0.113.66', '2001:db8::1'])"
    with pytest.raises(KqlValueError):
        render("ips", "list[ip]", ["203.0.113.66", "not-an-ip"])
    with pytest.raises(KqlValueError, match="empty"):
        render("ips", "list[ip]", [])


# ------------------------------------------------------------------------------------------------ named queries


def test_every_named_query_loads_and_renders_with_its_defaults() -> None:
    examples = {
        "upn": "adele.vance@contoso.com",
        "ip": "203.0.113.66",
        "hostname": "vm-web-01",
        "text": "CONTOSO\\adele",
        "guid": "1c9f2b8e-4a3d-4e6f-8b1c-2d3e4f5a6b01",
        "hash": "d41d8cd98f00b204e9800998ecf8427e",
    }
    queries = load_queries()
    assert {"signin_summary", "ip_signins", "ip_network_events", "host_security_events", "host_heartbeat"} <= set(
        queries
    )
    for query in queries.values():
        values = {
            p.name: [examples[p.type[5:-1]]] if p.type.startswith("list[") else examples[p.type]
            for p in query.params.values()
            if p.default is None
        }
        text = query.render(**values)
        assert "{" not in re.sub(r"dynamic\(\{.*?\}\)", "", text)  # every placeholder filled
        duckdb_kql.parse(text)  # valid KQL


def test_a_value_that_looks_like_a_placeholder_is_not_substituted() -> None:
    query = load_queries()["account_logons"]
    text = query.render(account="{lookback}", lookback="2d")
    assert "Account =~ '{lookback}'" in text and "ago(2d)" in text


def test_named_query_errors() -> None:
    query = load_queries()["signin_summary"]
    with pytest.raises(KqlValueError, match="required"):
        query.render()
    with pytest.raises(KqlValueError, match="not a parameter"):
        query.render(upn="a@b.com", table="SigninLogs")
    with pytest.raises(QueryError, match="not a declared parameter"):
        parse_query("// name: q\n// param a: text\nT | where x == {a} and y == {b}", "q.kql")
    with pytest.raises(QueryError, match="never used"):
        parse_query("// name: q\n// param a: text\nT", "q.kql")
    with pytest.raises(QueryError, match="unknown parameter type"):
        parse_query("// name: q\n// param a: sql\nT | where x == {a}", "q.kql")
