"""The Log Analytics query API against the real azure-monitor-query LogsQueryClient (sync and aio): real KQL over the
generated demo tables, typed columns, timespans, batches, resource-centric queries and the service's error shapes."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from azure.core.exceptions import HttpResponseError
from azure.identity import DefaultAzureCredential
from azure.identity.aio import DefaultAzureCredential as AsyncDefaultAzureCredential
from azure.monitor.query import LogsBatchQuery, LogsQueryClient, LogsQueryError, LogsQueryResult, LogsQueryStatus
from azure.monitor.query.aio import LogsQueryClient as AsyncLogsQueryClient

from tests.conftest import PUBLISHED

WORKSPACE = "2b7e4c1d-9f3a-4e5b-8c6d-1a0f9e8d7c6b"
SUBSCRIPTION = "8c2b5f0e-3d4a-4b6c-9a1e-7f2d3c4b5a60"
VM_WEB = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-prod-web/providers/Microsoft.Compute/virtualMachines/vm-web-01"
)
WORKSPACE_RESOURCE = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-soc"
    "/providers/Microsoft.OperationalInsights/workspaces/law-sentinel"
)
ADELE = "adele.vance@contoso.com"
SPRAY_IP = "203.0.113.66"
AUDIENCE = "https://api.loganalytics.io"


@pytest.fixture
def logs(cloud) -> Any:
    client = LogsQueryClient(
        DefaultAzureCredential(), endpoint=cloud.url, connection_verify=cloud.ca_path, audience=AUDIENCE, retry_total=0
    )
    yield client
    client.close()


def rows_of(result: Any) -> list[dict[str, Any]]:
    table = result.tables[0]
    return [dict(zip(table.columns, row, strict=True)) for row in table.rows]


def error_body(error: HttpResponseError) -> dict[str, Any]:
    assert error.response is not None
    body: dict[str, Any] = json.loads(error.response.text())
    return body


def token(cloud: Any) -> str:
    return DefaultAzureCredential().get_token(f"{AUDIENCE}/.default").token


def raw_query(cloud: Any, body: dict[str, Any] | None = None, **params: str) -> httpx.Response:
    """The workspace's query endpoint over plain HTTP: POST with a JSON body, or GET with the query string only."""
    url = f"{cloud.url}/v1/workspaces/{WORKSPACE}/query"
    auth = {"Authorization": f"Bearer {token(cloud)}"}
    if body is None:
        return httpx.get(url, params=params, headers=auth, verify=cloud.ca_path)
    return httpx.post(url, json=body, params=params, headers=auth, verify=cloud.ca_path)


def test_columns_come_back_typed_like_the_service(logs):
    result = logs.query_workspace(
        WORKSPACE,
        f"SigninLogs | where UserPrincipalName == '{ADELE}' | take 1 "
        "| project TimeGenerated, UserPrincipalName, DurationMs, IsRisky, LocationDetails, Score = 0.5, "
        "Elapsed = 90s, Id = toguid('6f1d3c2e-5a4b-4c8d-9e7f-0a1b2c3d4e5f'), Hits = toint(3)",
        timespan=timedelta(days=7),
    )
    assert result.status == LogsQueryStatus.SUCCESS
    table = result.tables[0]
    assert table.name == "PrimaryResult"
    assert table.columns_types == ["datetime", "string", "long", "bool", "dynamic", "real", "timespan", "guid", "int"]
    row = table.rows[0]
    assert isinstance(row["TimeGenerated"], datetime) and row["TimeGenerated"].utcoffset() == timedelta(0)
    assert row["UserPrincipalName"] == ADELE
    assert type(row["DurationMs"]) is int and type(row["Hits"]) is int
    assert type(row["IsRisky"]) is bool
    assert type(row["Score"]) is float
    assert row["Elapsed"] == "00:01:30"
    assert row["Id"] == "6f1d3c2e-5a4b-4c8d-9e7f-0a1b2c3d4e5f"
    # The v1 API serialises dynamic values as JSON text, as the real service does.
    location = json.loads(row["LocationDetails"])
    assert {"city", "countryOrRegion", "geoCoordinates"} <= set(location)


def test_raw_datetimes_use_iso_8601_with_z(cloud):
    response = raw_query(
        cloud, {"query": "print At = datetime(2024-05-01T10:00:00.1234567Z), Midnight = datetime(2024-05-02)"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["tables"][0]["rows"] == [["2024-05-01T10:00:00.123456Z", "2024-05-02T00:00:00Z"]]


def test_timespan_is_applied_to_every_table_before_the_query(logs):
    query = "union SigninLogs, Heartbeat, CommonSecurityLog | summarize n = count(), oldest = min(TimeGenerated)"
    everything = rows_of(logs.query_workspace(WORKSPACE, query, timespan=None))[0]
    last_hour = rows_of(logs.query_workspace(WORKSPACE, query, timespan=timedelta(hours=1)))[0]
    last_day = rows_of(logs.query_workspace(WORKSPACE, query, timespan=timedelta(days=1)))[0]
    assert 0 < last_hour["n"] < last_day["n"] < everything["n"]
    assert last_hour["oldest"] >= datetime.now(UTC) - timedelta(hours=1, minutes=1)
    assert everything["oldest"] < datetime.now(UTC) - timedelta(days=5)
    # an explicit start/end interval
    end = datetime.now(UTC) - timedelta(days=2)
    start = end - timedelta(hours=6)
    interval = rows_of(logs.query_workspace(WORKSPACE, "Heartbeat | project TimeGenerated", timespan=(start, end)))
    assert interval and all(start <= r["TimeGenerated"] <= end for r in interval)
    # start + duration
    after = rows_of(
        logs.query_workspace(WORKSPACE, "Heartbeat | project TimeGenerated", timespan=(start, timedelta(hours=6)))
    )
    assert len(after) == len(interval)


def test_query_string_and_body_timespans_intersect(cloud):
    query = "Heartbeat | count"
    wide = raw_query(cloud, {"query": query, "timespan": "P1D"}).json()
    both = raw_query(cloud, {"query": query, "timespan": "P1D"}, timespan="PT1H").json()
    narrow = raw_query(cloud, {"query": query, "timespan": "PT3600.0S"}).json()
    assert both["tables"][0]["rows"] == narrow["tables"][0]["rows"]
    assert both["tables"][0]["rows"][0][0] < wide["tables"][0]["rows"][0][0]


def test_get_with_query_parameters_works_like_post(cloud):
    response = raw_query(cloud, query="Heartbeat | summarize by Computer | order by Computer asc", timespan="PT1H")
    assert response.status_code == 200
    assert [r[0] for r in response.json()["tables"][0]["rows"]] == ["vm-dev-02", "vm-jump-01", "vm-web-01"]


def test_demo_story_password_spray_then_risky_success(logs):
    failures = rows_of(
        logs.query_workspace(
            WORKSPACE,
            f"SigninLogs | where UserPrincipalName == '{ADELE}' and ResultType == '50126' "
            "| summarize attempts = count(), earliest = min(TimeGenerated), latest = max(TimeGenerated) by IPAddress",
            timespan=timedelta(days=1),
        )
    )
    by_ip = {r["IPAddress"]: r for r in failures}
    assert {SPRAY_IP, "198.51.100.23"} <= set(by_ip)
    assert sum(r["attempts"] for r in failures) >= 20
    countries = rows_of(
        logs.query_workspace(
            WORKSPACE,
            f"SigninLogs | where UserPrincipalName == '{ADELE}' and ResultType != '0' | distinct Location",
            timespan=timedelta(days=1),
        )
    )
    assert len({r["Location"] for r in countries}) >= 3
    success = rows_of(
        logs.query_workspace(
            WORKSPACE,
            f"SigninLogs | where UserPrincipalName == '{ADELE}' and ResultType == '0' "
            "and RiskEventTypes_V2 has 'anonymizedIPAddress' and IsInteractive | top 1 by TimeGenerated asc",
            timespan=timedelta(days=1),
        )
    )
    assert success, "the spray must end in a successful sign-in from an anonymizing address"
    assert success[0]["TimeGenerated"] > max(r["latest"] for r in failures if r["IPAddress"] == SPRAY_IP)
    assert success[0]["RiskLevelDuringSignIn"] in ("medium", "high")
    others = rows_of(
        logs.query_workspace(
            WORKSPACE,
            f"SigninLogs | where IPAddress == '{SPRAY_IP}' and UserPrincipalName != '{ADELE}' "
            "| distinct UserPrincipalName",
            timespan=timedelta(days=1),
        )
    )
    assert len(others) >= 2


def test_demo_story_the_spray_address_hits_vm_web_01(logs):
    denied = rows_of(
        logs.query_workspace(
            WORKSPACE,
            f"CommonSecurityLog | where SourceIP == '{SPRAY_IP}' and DeviceAction == 'deny' "
            "| summarize n = count() by DestinationHostName, DestinationIP",
            timespan=timedelta(days=1),
        )
    )
    assert denied and denied[0]["DestinationHostName"] == "vm-web-01" and denied[0]["n"] >= 10
    assert denied[0]["DestinationIP"] == "20.61.15.33"  # the public IP of nic-web-01 in the ARM section
    failed_logons = rows_of(
        logs.query_workspace(
            WORKSPACE,
            f"SecurityEvent | where EventID == 4625 and IpAddress == '{SPRAY_IP}' | summarize n = count() by Computer",
            timespan=timedelta(days=1),
        )
    )
    assert failed_logons == [{"Computer": "vm-web-01", "n": failed_logons[0]["n"]}] and failed_logons[0]["n"] >= 10
    heartbeat = rows_of(
        logs.query_workspace(
            WORKSPACE,
            "Heartbeat | where Computer == 'vm-web-01' | summarize latest = max(TimeGenerated)",
            timespan=timedelta(days=1),
        )
    )
    assert heartbeat[0]["latest"] > datetime.now(UTC) - timedelta(minutes=15)


def test_security_alerts_match_the_sentinel_incidents(cloud, logs):
    incidents = cloud.tenant()["sentinel"]["incidents"]
    alerts = rows_of(
        logs.query_workspace(WORKSPACE, "SecurityAlert | project SystemAlertId, AlertName, Entities", timespan=None)
    )
    assert len(alerts) == sum(len(i.get("alerts") or []) for i in incidents)
    assert {a["properties"]["alertDisplayName"] for i in incidents for a in i["alerts"]} == {
        a["AlertName"] for a in alerts
    }
    for alert in alerts:
        entities = json.loads(alert["Entities"])  # a JSON *string* column in the legacy dialect
        assert all("$id" in e and e["Type"] == e["Type"].lower() for e in entities)
    account = next(e for a in alerts for e in json.loads(a["Entities"]) if e["Type"] == "account")
    assert {"Name", "UPNSuffix"} <= set(account)
    linked = rows_of(
        logs.query_workspace(
            WORKSPACE, "SecurityIncident | mv-expand AlertIds to typeof(string) | project AlertIds", timespan=None
        )
    )
    assert {r["AlertIds"] for r in linked} == {a["SystemAlertId"] for a in alerts}


def test_invalid_kql_is_a_400_syntax_error(logs):
    with pytest.raises(HttpResponseError) as raised:
        logs.query_workspace(WORKSPACE, "SigninLogs | where (", timespan=None)
    assert raised.value.status_code == 400
    assert raised.value.error is not None and raised.value.error.code == "BadArgumentError"
    error = error_body(raised.value)["error"]
    assert error["message"] == "The request had some invalid properties"
    assert error["innererror"]["code"] == "SyntaxError"
    detail = error["innererror"]["innererror"]
    assert detail["code"] == "SYN0002" and detail["line"] == 1 and isinstance(detail["pos"], int)
    assert "correlationId" in error


def test_syntax_error_position_matches_the_service(cloud):
    response = raw_query(cloud, {"query": "completely invalid syntax", "timespan": "P1D"})
    assert response.status_code == 400
    # what api.loganalytics.io answers for this very query (recorded in the Azure SDK test suites)
    detail = response.json()["error"]["innererror"]["innererror"]
    assert detail == {
        "code": "SYN0002",
        "message": "Query could not be parsed at 'invalid' on line [1,11]",
        "line": 1,
        "pos": 11,
        "token": "invalid",
    }


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("NoSuchTable | take 1", "NoSuchTable"),
        ("signinlogs | take 1", "signinlogs"),  # table names are case-sensitive in KQL
        ("SigninLogs | where NoSuchColumn == 1", "NoSuchColumn"),
    ],
)
def test_unknown_names_are_a_400_semantic_error(logs, query, name):
    with pytest.raises(HttpResponseError) as raised:
        logs.query_workspace(WORKSPACE, query, timespan=None)
    assert raised.value.status_code == 400
    inner = error_body(raised.value)["error"]["innererror"]
    assert inner["code"] == "SemanticError"
    assert inner["innererror"]["code"] == "SEM0100" and f"'{name}'" in inner["innererror"]["message"]


def test_unknown_workspace_is_404_path_not_found(logs):
    with pytest.raises(HttpResponseError) as raised:
        logs.query_workspace("00000000-0000-0000-0000-000000000000", "Heartbeat | take 1", timespan=None)
    assert raised.value.status_code == 404
    assert error_body(raised.value)["error"]["code"] == "PathNotFoundError"


def test_invalid_timespan_is_a_400(cloud):
    response = raw_query(cloud, {"query": "Heartbeat | count", "timespan": "yesterday"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadArgumentError"


def test_string_literals_with_quotes_and_backslashes_are_literals(cloud, logs):
    tricky = 'o\'brien\\"x" or 1==1 //'
    doc = cloud.tenant()
    doc["logAnalytics"]["tables"] = {"Notes_CL": [{"TimeGenerated": "now-1h", "Note": tricky}, {"Note": "plain"}]}
    cloud.admin.put("/tenant", json=doc).raise_for_status()
    escaped = tricky.replace("\\", "\\\\").replace("'", "\\'")
    found = rows_of(
        logs.query_workspace(WORKSPACE, f"Notes_CL | where Note == '{escaped}' | project Note", timespan=None)
    )
    assert found == [{"Note": tricky}]
    verbatim = rows_of(logs.query_workspace(WORKSPACE, "print p = @'C:\\temp\\new'", timespan=None))
    assert verbatim == [{"p": "C:\\temp\\new"}]
    injected = rows_of(
        logs.query_workspace(WORKSPACE, "Notes_CL | where Note == 'x\\' or 1==1 //' | count", timespan=None)
    )
    assert injected == [{"Count": 0}]


def test_tenant_tables_section_adds_rows_and_custom_tables(cloud, logs):
    doc = cloud.tenant()
    assert set(doc["logAnalytics"]) <= {"generate", "tables"}, "generated rows must stay out of the document"
    doc["logAnalytics"] = {"tables": {"MyApp_CL": [{"TimeGenerated": "ago(10m)", "Level": "Error", "Code": 7}]}}
    cloud.admin.put("/tenant", json=doc).raise_for_status()
    custom = logs.query_workspace(WORKSPACE, "MyApp_CL", timespan=timedelta(hours=1))
    assert custom.tables[0].columns_types == ["string", "datetime", "string", "long", "string"]
    assert rows_of(custom)[0]["Type"] == "MyApp_CL" and rows_of(custom)[0]["TenantId"] == WORKSPACE
    # without `generate` the built-in tables exist and are empty
    assert rows_of(logs.query_workspace(WORKSPACE, "SigninLogs | count", timespan=None)) == [{"Count": 0}]


def test_batch_returns_one_answer_per_request_in_order(logs):
    results = logs.query_batch(
        [
            LogsBatchQuery(WORKSPACE, "Heartbeat | summarize by Computer", timespan=timedelta(hours=1)),
            LogsBatchQuery(WORKSPACE, "NoSuchTable", timespan=None),
            LogsBatchQuery("00000000-0000-0000-0000-000000000000", "Heartbeat", timespan=None),
            LogsBatchQuery(WORKSPACE, "print x = 1", timespan=timedelta(hours=1)),
        ]
    )
    assert isinstance(results[0], LogsQueryResult) and len(results[0].tables[0].rows) == 3
    assert isinstance(results[1], LogsQueryError) and results[1].code == "BadArgumentError"
    assert isinstance(results[2], LogsQueryError) and results[2].code == "PathNotFoundError"
    assert isinstance(results[3], LogsQueryResult) and results[3].tables[0].rows[0][0] == 1


def test_raw_batch_shape(cloud):
    response = httpx.post(
        f"{cloud.url}/v1/$batch",
        json={
            "requests": [
                {"id": "a", "workspace": WORKSPACE, "path": "/query", "method": "POST", "body": {"query": "print 1"}},
                {"id": "b", "workspace": WORKSPACE, "path": "/query", "method": "POST", "body": {"query": "print ("}},
            ]
        },
        headers={"Authorization": f"Bearer {token(cloud)}"},
        verify=cloud.ca_path,
    )
    assert response.status_code == 200
    answers = response.json()["responses"]
    assert [(a["id"], a["status"]) for a in answers] == [("a", 200), ("b", 400)]
    assert answers[0]["body"]["tables"][0]["rows"] == [[1]]
    assert answers[1]["body"]["error"]["innererror"]["code"] == "SyntaxError"


def test_resource_centric_queries_see_only_that_resource(logs):
    vm = rows_of(logs.query_resource(VM_WEB, "Heartbeat | summarize by Computer", timespan=timedelta(hours=1)))
    assert vm == [{"Computer": "vm-web-01"}]
    # tables without _ResourceId have nothing for a VM
    assert rows_of(logs.query_resource(VM_WEB, "SigninLogs | count", timespan=timedelta(days=1))) == [{"Count": 0}]
    # the workspace's own resource id is the whole workspace
    whole = rows_of(
        logs.query_resource(WORKSPACE_RESOURCE, "Heartbeat | summarize by Computer", timespan=timedelta(hours=1))
    )
    assert len(whole) == 3
    with pytest.raises(HttpResponseError) as raised:
        logs.query_resource(VM_WEB.replace("vm-web-01", "vm-missing"), "Heartbeat", timespan=None)
    assert raised.value.status_code == 404


def test_statistics_and_render_are_returned_when_preferred(logs):
    result = logs.query_workspace(
        WORKSPACE,
        "Heartbeat | summarize count() by bin(TimeGenerated, 1h) | render timechart title='Agents'",
        timespan=timedelta(days=1),
        include_statistics=True,
        include_visualization=True,
    )
    assert result.statistics["query"]["executionTime"] >= 0
    assert result.visualization["visualization"] == "timechart" and result.visualization["title"] == "Agents"
    plain = logs.query_workspace(WORKSPACE, "print 1", timespan=None)
    assert plain.statistics is None and plain.visualization is None


def test_published_example_columns_and_value_types(logs):
    published = json.loads((PUBLISHED / "log_analytics" / "query_post_v1.json").read_text())
    example = published["responses"]["200"]["body"]["tables"][0]
    parameters = published["parameters"]["body"]
    result = logs.query_workspace(WORKSPACE, parameters["query"], timespan=timedelta(hours=12))
    table = result.tables[0]
    assert table.name == example["name"]
    assert [{"name": n, "type": t} for n, t in zip(table.columns, table.columns_types, strict=True)] == example[
        "columns"
    ]
    assert table.rows, "the Usage table must have rows for the last 12 hours"
    python_types = {"string": str, "datetime": datetime, "long": int, "real": float, "bool": bool}
    for row in table.rows:
        for value, kind in zip(row, table.columns_types, strict=True):
            # The example writes long/real/bool as strings (an old capture); the service sends JSON numbers/booleans.
            assert value is None or isinstance(value, python_types[kind]), (kind, value)


def test_typical_query_answers_in_milliseconds(logs):
    query = (
        f"SigninLogs | where UserPrincipalName == '{ADELE}' "
        "| summarize failures = countif(ResultType != '0'), ips = make_set(IPAddress) by bin(TimeGenerated, 1h)"
    )
    logs.query_workspace(WORKSPACE, query, timespan=timedelta(days=1))  # builds the database if needed
    timings = []
    for _ in range(10):
        started = time.perf_counter()
        logs.query_workspace(WORKSPACE, query, timespan=timedelta(days=1))
        timings.append(time.perf_counter() - started)
    assert statistics.median(timings) < 0.25  # a few ms in practice; generous for slow CI machines


async def test_async_client_queries_and_batches(cloud):
    async with (
        AsyncDefaultAzureCredential() as credential,
        AsyncLogsQueryClient(
            credential, endpoint=cloud.url, connection_verify=cloud.ca_path, audience=AUDIENCE
        ) as client,
    ):
        result = await client.query_workspace(
            WORKSPACE, "Heartbeat | summarize latest = max(TimeGenerated) by Computer", timespan=timedelta(hours=1)
        )
        assert isinstance(result, LogsQueryResult)
        assert {row["Computer"] for row in result.tables[0].rows} == {"vm-web-01", "vm-dev-02", "vm-jump-01"}
        assert all(isinstance(row["latest"], datetime) for row in result.tables[0].rows)
        batch = await client.query_batch(
            [LogsBatchQuery(WORKSPACE, "print n = 2", timespan=None), LogsBatchQuery(WORKSPACE, "(", timespan=None)]
        )
        assert isinstance(batch[0], LogsQueryResult) and batch[0].tables[0].rows[0]["n"] == 2
        assert isinstance(batch[1], LogsQueryError)
        with pytest.raises(HttpResponseError) as raised:
            await client.query_workspace(WORKSPACE, "NoSuchTable", timespan=None)
        assert raised.value.status_code == 400


async def test_concurrent_queries_all_answer_consistently(cloud):
    queries = [f"Heartbeat | where Computer == 'vm-web-01' | summarize n = count() | extend q = {i}" for i in range(12)]
    async with (
        AsyncDefaultAzureCredential() as credential,
        AsyncLogsQueryClient(
            credential, endpoint=cloud.url, connection_verify=cloud.ca_path, audience=AUDIENCE
        ) as client,
    ):
        results = await asyncio.gather(
            *(client.query_workspace(WORKSPACE, q, timespan=timedelta(days=1)) for q in queries)
        )
    answers = [rows_of(r)[0] for r in results]
    assert [a["q"] for a in answers] == list(range(12))
    assert len({a["n"] for a in answers}) == 1 and answers[0]["n"] > 0
