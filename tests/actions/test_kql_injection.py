"""An injection corpus through the named queries, run by the emulated Log Analytics (real KQL via duckdb-kql).

As free text (account_logons' `account`, what Windows logs as DOMAIN\\user), each payload is seeded as the Account of
exactly one SecurityEvent row, next to decoys: the query for a payload returns exactly its own row, and a payload that
was not seeded returns what a name that matches nothing returns. So the query's meaning never changes, whatever the
value. Through the typed parameters (UPN, IP, host name) the same payloads are refused before any query is sent; the
ones a type does accept (a UPN may hold a quote) are escaped and match exactly their own row."""

from __future__ import annotations

from typing import Any

import pytest

from shared.actions import executor
from shared.kql import load_queries
from tests.actions.conftest import ContextFactory
from tests.conftest import CloudHandle
from tests.unit.test_kql_literals import kusto_decode

CORPUS: list[str] = [
    "CONTOSO\\adele' or 1==1 //",
    "' or 1==1 //",
    "x' or Account != '",
    'CONTOSO\\adele" or 1==1 //',
    '"',
    "'",
    "''",
    "\\",
    "CONTOSO\\",  # trailing backslash: would escape the closing quote if not doubled
    "CONTOSO\\\\'",
    "\\'",
    "a\\nb",  # a backslash and an n, not a newline
    "line1\nline2",
    "line1\r\n| union SigninLogs",
    "tab\there",
    "x | take 1000",
    "x' | union SigninLogs | where '1' == '1",
    "x'; let Account = 'CONTOSO\\\\victim'; SecurityEvent //",
    "let x = 1; x",
    "x // comment",
    "x' // comment",
    "/* x */ y",
    "x' /* comment */ or '1' == '1",
    "x' | project Account | union (SecurityEvent | where EventID == 4625) | where 'a' == 'a",
    ";",
    "x';",
    "adele\u2019 or 1==1 //",  # RIGHT SINGLE QUOTATION MARK
    "adele\uff07 or 1==1 //",  # FULLWIDTH APOSTROPHE
    "adele\u02bc or 1==1 //",  # MODIFIER LETTER APOSTROPHE
    "\u201cquoted\u201d",
    "ad\u200bele",  # zero-width space
    "\u200d\u200c\ufeffjoined",  # zero-width joiner, non-joiner, BOM
    "sep\u2028arator\u2029",
    "{lookback}",
    "{account}",
    "\U0001f600 emoji",
    "'" * 2000,
    "\\" * 2000,
    ("A'\\\"" * 1000)[:4096],  # the longest text accepted
]
DECOYS = ["CONTOSO\\victim", "CONTOSO\\adele", "x", "adele", "line1", "", "CONTOSO\\admin"]


def _row(account: str, computer: str) -> dict[str, Any]:
    return {
        "TimeGenerated": "ago(1h)",
        "Account": account,
        "EventID": 4625,
        "Computer": computer,
        "IpAddress": "10.9.9.9",
    }


@pytest.fixture
def seeded(cloud: CloudHandle) -> dict[str, str]:
    """Every other payload gets one SecurityEvent row (its own computer name); the rest are never logged."""
    assert len({p.lower() for p in CORPUS}) == len(CORPUS)  # the query ignores case: keep payloads distinct
    rows = {payload: f"inj-{i:02d}" for i, payload in enumerate(CORPUS) if i % 2 == 0}
    doc = cloud.tenant()
    tables = doc.setdefault("logAnalytics", {}).setdefault("tables", {})
    tables["SecurityEvent"] = [_row(account, computer) for account, computer in rows.items()] + [
        _row(decoy, f"decoy-{i}") for i, decoy in enumerate(DECOYS)
    ]
    tables["SigninLogs"] = [
        {"TimeGenerated": "ago(1h)", "UserPrincipalName": "o'brien@contoso.com", "IPAddress": "10.9.9.9",
         "ResultType": "50126", "Location": "IE"},
        {"TimeGenerated": "ago(1h)", "UserPrincipalName": "brien@contoso.com", "IPAddress": "10.9.9.8",
         "ResultType": "0", "Location": "IE"},
    ]  # fmt: skip
    cloud.admin.put("/tenant", json=doc).raise_for_status()
    return rows


async def test_free_text_matches_exactly_its_own_row(
    make_context: ContextFactory, cloud: CloudHandle, seeded: dict[str, str]
):
    ctx = make_context()
    for payload in CORPUS:
        finding = await executor.enrich(ctx, "loganalytics.get_account_logons", {"account": payload, "lookback": "1d"})
        assert finding.ok, (payload, finding.error)
        data = finding.data
        if payload in seeded:
            assert data["computers"] == [seeded[payload]], payload
            assert data["accounts"] == [payload], payload
            assert (data["failedLogons"], data["successfulLogons"]) == (1, 0), payload
        else:  # what a name that matches nothing gives
            assert data == {**data, "failedLogons": 0, "successfulLogons": 0, "computers": [], "accounts": []}, payload
    queries = cloud.requests(service="loganalytics", method="POST")
    assert len(queries) == len(CORPUS) and {q["status"] for q in queries} == {200}


async def test_a_name_that_matches_nothing_gives_the_same_answer_as_an_unseeded_payload(
    make_context: ContextFactory, seeded: dict[str, str]
):
    ctx = make_context()
    nothing = await executor.enrich(ctx, "loganalytics.get_account_logons", {"account": "NOBODY\\nobody"})
    unseeded = [p for p in CORPUS if p not in seeded]
    for payload in unseeded:
        finding = await executor.enrich(ctx, "loganalytics.get_account_logons", {"account": payload})
        assert {k: v for k, v in finding.data.items() if k != "account"} == {
            k: v for k, v in nothing.data.items() if k != "account"
        }, payload


async def test_typed_parameters_refuse_the_corpus_before_any_query(make_context: ContextFactory, cloud: CloudHandle):
    ctx = make_context()
    for payload in CORPUS:
        upn = await executor.enrich(ctx, "loganalytics.get_signin_summary", {"upn": payload})
        ip = await executor.enrich(ctx, "loganalytics.get_ip_context", {"ip": payload})
        host = await executor.enrich(ctx, "loganalytics.get_host_activity", {"host": payload})
        for finding, message in ((upn, "user principal name"), (ip, "IPv4 or IPv6"), (host, "host name")):
            assert not finding.ok and message in finding.error, (payload, finding.error)
        for lookback in (payload, f"1d) or ({payload}"):
            bad = await executor.enrich(
                ctx, "loganalytics.get_signin_summary", {"upn": "a@contoso.com", "lookback": lookback}
            )
            assert not bad.ok
    assert cloud.requests(service="loganalytics") == []


async def test_a_upn_with_a_quote_is_escaped_and_matches_only_itself(
    make_context: ContextFactory, cloud: CloudHandle, seeded: dict[str, str]
):
    finding = await executor.enrich(make_context(), "loganalytics.get_signin_summary", {"upn": "o'brien@contoso.com"})
    assert finding.ok, finding.error
    assert (finding.data["total"], finding.data["failures"], finding.data["ips"]) == (1, 1, ["10.9.9.9"])
    [query] = cloud.requests(service="loganalytics", method="POST")
    assert "UserPrincipalName =~ 'o\\'brien@contoso.com'" in query["body"]["query"]


def test_the_corpus_renders_into_every_text_query_as_one_literal() -> None:
    text_queries = [q for q in load_queries().values() if any(p.type == "text" for p in q.params.values())]
    assert text_queries, "a named query with a text parameter is what this corpus exercises"
    for query in text_queries:
        names = [p.name for p in query.params.values() if p.type == "text"]
        lists = {p.name: ["OTHER"] for p in query.params.values() if p.type == "list[text]"}
        for name in names:
            others = {**lists, **{other: "OTHER" for other in names if other != name}}
            baseline = query.render(**others, **{name: "PLACEHOLDER"})
            parts = baseline.split("'PLACEHOLDER'")  # a query may use a parameter more than once
            for payload in CORPUS:
                rendered = query.render(**others, **{name: payload})
                # The query around each literal is the baseline's, and each literal is one literal of the payload.
                size = (len(rendered) - sum(map(len, parts))) // (len(parts) - 1)
                literal = rendered[len(parts[0]) : len(parts[0]) + size]
                assert rendered == literal.join(parts) and kusto_decode(literal) == payload


# --- the enrichment catalogue's parameters ---------------------------------------------------------------------------


@pytest.fixture
def seeded_catalogue(cloud: CloudHandle) -> dict[str, str]:
    """Every other payload is a watchlist item's search key (alias Corpus) and a legacy indicator's URL; the rest are
    never recorded."""
    rows = {payload: f"item-{i:02d}" for i, payload in enumerate(CORPUS) if i % 2 == 0}
    doc = cloud.tenant()
    tables = doc.setdefault("logAnalytics", {}).setdefault("tables", {})
    keys = [*rows.items(), *((decoy, f"decoy-{i}") for i, decoy in enumerate(DECOYS))]
    tables["Watchlist"] = [
        {"TimeGenerated": "ago(1h)", "WatchlistAlias": "Corpus", "SearchKey": key, "WatchlistItem": {"Id": marker},
         "_DTItemId": marker, "_DTItemType": "watchlist-item", "_DTItemStatus": "Create", "_DTTimestamp": "ago(1h)"}
        for key, marker in keys
    ]  # fmt: skip
    tables["ThreatIntelligenceIndicator"] = [
        {"TimeGenerated": "ago(1h)", "IndicatorId": marker, "Url": key, "Active": True, "ConfidenceScore": 50.0,
         "ExpirationDateTime": "now+1d", "Description": marker}
        for key, marker in keys
    ]  # fmt: skip
    cloud.admin.put("/tenant", json=doc).raise_for_status()
    return rows


async def test_watchlist_keys_match_exactly_their_own_item(
    make_context: ContextFactory, cloud: CloudHandle, seeded_catalogue: dict[str, str]
):
    ctx = make_context()
    for payload in CORPUS:
        if len(payload) > 1024:
            continue  # longer than a watchlist key may be: refused by the parameter's own limit
        finding = await executor.enrich(ctx, "loganalytics.lookup_watchlist", {"alias": "Corpus", "key": payload})
        assert finding.ok, (payload, finding.error)
        expected = [{"Id": seeded_catalogue[payload]}] if payload in seeded_catalogue else []
        assert finding.data["items"] == expected, payload


async def test_threat_intel_urls_match_exactly_their_own_indicator(
    make_context: ContextFactory, cloud: CloudHandle, seeded_catalogue: dict[str, str]
):
    ctx = make_context()
    for payload in CORPUS:
        finding = await executor.enrich(ctx, "loganalytics.lookup_threat_intel", {"url": payload})
        assert finding.ok, (payload, finding.error)
        expected = [seeded_catalogue[payload]] if payload in seeded_catalogue else []
        assert [m["indicatorId"] for m in finding.data["matches"]] == expected, payload


async def test_run_query_text_parameters_match_exactly_their_own_row(
    make_context: ContextFactory, cloud: CloudHandle, seeded: dict[str, str]
):
    kql = "// param account: text\nSecurityEvent | where Account == {account} | project Computer"
    ctx = make_context()
    for payload in CORPUS:
        finding = await executor.enrich(ctx, "loganalytics.run_query", {"kql": kql, "parameters": {"account": payload}})
        assert finding.ok, (payload, finding.error)
        expected = [{"Computer": seeded[payload]}] if payload in seeded else []
        assert finding.data["rows"] == expected, payload


async def test_typed_catalogue_parameters_refuse_the_corpus(make_context: ContextFactory, cloud: CloudHandle):
    ctx = make_context()
    for payload in CORPUS:
        for params in ({"ip": payload}, {"domain": payload}, {"fileHash": payload}):
            finding = await executor.enrich(ctx, "loganalytics.lookup_threat_intel", params)
            assert not finding.ok, (payload, params)
        alias = await executor.enrich(ctx, "loganalytics.lookup_watchlist", {"alias": payload, "key": "x"})
        assert not alias.ok, payload
        run = await executor.enrich(
            ctx, "loganalytics.run_query", {"query": "ip_signins", "parameters": {"ip": payload}}
        )
        assert not run.ok and "IPv4 or IPv6" in run.error, payload
    assert cloud.requests(service="loganalytics") == []


async def test_related_alerts_by_account_name_never_change_meaning(make_context: ContextFactory, cloud: CloudHandle):
    """A payload an account name cannot be is refused before any query; one it can be (a quote is allowed) is one
    literal, finds no alert of the demo and never makes the query fail."""
    ctx = make_context()
    accepted = []
    for payload in CORPUS:
        finding = await executor.enrich(ctx, "loganalytics.list_related_alerts", {"account": payload})
        if not finding.ok:
            assert "not an account name" in finding.error, (payload, finding.error)
            continue
        accepted.append(payload)
        assert finding.data["alerts"] == 0, (payload, finding.data["items"])
    assert len(cloud.requests(service="loganalytics")) == len(accepted) > 0


async def test_typed_hunting_parameters_refuse_the_corpus(make_context: ContextFactory, cloud: CloudHandle):
    ctx = make_context()
    for payload in CORPUS:
        for action, params in (
            ("loganalytics.get_ueba_profile", {"upn": payload}),
            ("loganalytics.list_related_alerts", {"ip": payload}),
            ("loganalytics.list_related_alerts", {"host": payload}),
            ("loganalytics.list_related_alerts", {"aadUserId": payload}),
            ("loganalytics.get_flow_summary", {"vm": payload}),
            ("loganalytics.get_flow_summary", {"ip": payload}),
        ):
            finding = await executor.enrich(ctx, action, params)
            assert not finding.ok, (payload, action, params)
    assert cloud.requests(service="loganalytics") == []


def test_the_corpus_renders_into_every_text_list_as_one_literal_each() -> None:
    list_queries = [q for q in load_queries().values() if any(p.type == "list[text]" for p in q.params.values())]
    assert list_queries, "the protected-accounts watchlist query takes a list of keys"
    for query in list_queries:
        [name] = [p.name for p in query.params.values() if p.type == "list[text]"]
        texts = {p.name: "OTHER" for p in query.params.values() if p.type == "text"}
        prefix, suffix = query.render(**texts, **{name: ["PLACEHOLDER"]}).split("dynamic(['PLACEHOLDER'])")
        for payload in CORPUS:
            rendered = query.render(**texts, **{name: [payload, "second"]})
            assert rendered.startswith(prefix + "dynamic([") and rendered.endswith(", 'second'])" + suffix)
            literal = rendered[len(prefix) + len("dynamic([") : len(rendered) - len(", 'second'])" + suffix)]
            assert kusto_decode(literal) == payload
