"""The log generator and the Log Analytics emulator's pure parts: determinism, fallbacks, explicit rows, the legacy
entity dialect, timespans and Kusto value formatting."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import yaml

from local.cloud import errors, loganalytics, loggen, seed
from local.cloud.state import DEFAULT_TENANT

DEMO = DEFAULT_TENANT
NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def demo_doc(now: datetime = NOW) -> dict[str, Any]:
    return seed.expand(yaml.safe_load(DEMO.read_text(encoding="utf-8")), now)


def dump(tables: loggen.Tables) -> str:
    return json.dumps(tables, default=str, sort_keys=True)


def test_same_seed_tenant_and_now_give_the_same_rows():
    doc = demo_doc()  # expanded once: the ARM expander stamps some times from the wall clock
    assert dump(loggen.generate(copy.deepcopy(doc), NOW)) == dump(loggen.generate(copy.deepcopy(doc), NOW))


def test_another_seed_gives_other_rows():
    doc = demo_doc()
    other = demo_doc()
    other["logAnalytics"]["generate"]["seed"] = 7
    assert dump(loggen.generate(doc, NOW)) != dump(loggen.generate(other, NOW))


def test_demo_tenant_makes_a_few_thousand_rows_in_the_last_days():
    now = datetime.now(UTC)
    tables = loggen.generate(demo_doc(now), now)
    total = sum(len(rows) for rows in tables.values())
    assert 2000 <= total <= 6000
    moments = [row["TimeGenerated"] for rows in tables.values() for row in rows]
    assert now - timedelta(days=8) <= min(moments) and max(moments) <= now + timedelta(seconds=5)
    for table in ("SigninLogs", "AuditLogs", "SecurityAlert", "SecurityIncident", "AzureActivity", "Heartbeat"):
        assert tables[table], table
    assert tables["SecurityEvent"] and tables["CommonSecurityLog"]


def test_rows_line_up_with_the_rest_of_the_tenant():
    doc = demo_doc()
    tables = loggen.generate(doc, NOW)
    users = {u["userPrincipalName"] for u in doc["graph"]["users"]}
    assert {r["UserPrincipalName"] for r in tables["SigninLogs"]} <= users
    vms = {r["name"] for r in doc["arm"]["resources"] if r["type"] == "Microsoft.Compute/virtualMachines"}
    assert {r["Computer"] for r in tables["Heartbeat"]} == vms
    # every risk detection in Graph has its sign-in, from its address
    for detection in doc["graph"]["riskDetections"]:
        if detection.get("ipAddress"):
            assert any(
                r["UserId"] == detection["userId"] and r["IPAddress"] == detection["ipAddress"]
                for r in tables["SigninLogs"]
            ), detection["id"]
    assert {r["TenantId"] for rows in tables.values() for r in rows} == {loggen.DEMO_WORKSPACE_ID}


def test_missing_sections_fall_back_to_the_fixed_demo_facts():
    tables = loggen.generate({"logAnalytics": {"generate": {"seed": 1}}}, NOW)
    assert {r["Computer"] for r in tables["Heartbeat"]} == {"vm-web-01", "vm-dev-02", "vm-jump-01"}
    adele = [r for r in tables["SigninLogs"] if r["UserPrincipalName"] == "adele.vance@contoso.com"]
    assert {"203.0.113.66", "198.51.100.23"} <= {r["IPAddress"] for r in adele if r["ResultType"] == "50126"}
    assert len(tables["SecurityIncident"]) == 2 and len(tables["SecurityAlert"]) == 3


def test_without_generate_only_explicit_rows_exist():
    doc = {"logAnalytics": {"tables": {"SigninLogs": [{"UserPrincipalName": "x@contoso.com"}]}}}
    tables = loggen.generate(doc, NOW)
    assert [r["UserPrincipalName"] for r in tables["SigninLogs"]] == ["x@contoso.com"]
    assert tables["SigninLogs"][0]["TimeGenerated"] == NOW
    assert not tables["Heartbeat"]


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("now", NOW),
        ("ago(2h)", NOW - timedelta(hours=2)),
        ("now-90m", NOW - timedelta(minutes=90)),
        ("now + 1d", NOW + timedelta(days=1)),
        ("2024-04-30T10:00:00.1234567Z", datetime(2024, 4, 30, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2024-04-30T12:00:00+02:00", datetime(2024, 4, 30, 10, 0, tzinfo=UTC)),
        (datetime(2024, 4, 30, 10, 0), datetime(2024, 4, 30, 10, 0, tzinfo=UTC)),
        (date(2024, 4, 30), datetime(2024, 4, 30, tzinfo=UTC)),
        ("yesterday", None),
    ],
)
def test_explicit_row_times(written, expected):
    assert loggen.parse_moment(written, NOW) == expected


def test_custom_tables_get_columns_from_their_values():
    rows = [
        loggen.explicit_row("MyApp_CL", {"Level": "Error", "Code": 7, "Ratio": 0.5, "Ok": True}, NOW, "ws"),
        loggen.explicit_row("MyApp_CL", {"Props": '{"a": 1}', "Code": None, "Later": None}, NOW, "ws"),
    ]
    assert loggen.columns_for("MyApp_CL", rows) == [
        ("TenantId", "string"),
        ("TimeGenerated", "datetime"),
        ("Level", "string"),
        ("Code", "long"),
        ("Ratio", "real"),
        ("Ok", "bool"),
        ("Type", "string"),
        ("Props", "string"),
        ("Later", "string"),
    ]
    # a dynamic column of a built-in table given as JSON text is stored as the object
    row = loggen.explicit_row("SigninLogs", {"LocationDetails": '{"city": "Delft"}'}, NOW, "ws")
    assert row["LocationDetails"] == {"city": "Delft"} and row["Type"] == "SigninLogs"


def test_entities_are_written_in_the_legacy_security_alert_dialect():
    entities = [
        {"kind": "Account", "properties": {"accountName": "adele.vance", "upnSuffix": "contoso.com",
                                           "aadUserId": "u1", "friendlyName": "adele.vance"}},
        {"kind": "Ip", "properties": {"address": "203.0.113.66"}},
        {"kind": "AzureResource", "properties": {"resourceId": "/subscriptions/x"}},
        {"kind": "Host", "properties": {"hostName": "vm-web-01", "azureID": "/subscriptions/y", "omsAgentID": "a"}},
    ]  # fmt: skip
    assert json.loads(loggen.legacy_entities(entities)) == [
        {"$id": "2", "Name": "adele.vance", "UPNSuffix": "contoso.com", "AadUserId": "u1", "Type": "account"},
        {"$id": "3", "Address": "203.0.113.66", "Type": "ip"},
        {"$id": "4", "ResourceId": "/subscriptions/x", "Type": "azure-resource"},
        {"$id": "5", "HostName": "vm-web-01", "AzureID": "/subscriptions/y", "OMSAgentID": "a", "Type": "host"},
    ]


@pytest.mark.parametrize(
    ("timespan", "start", "end"),
    [
        ("PT12H", NOW - timedelta(hours=12), NOW),
        ("P1D", NOW - timedelta(days=1), NOW),
        ("PT3600.0S", NOW - timedelta(hours=1), NOW),
        ("P1DT12H", NOW - timedelta(hours=36), NOW),
        ("P1W", NOW - timedelta(days=7), NOW),
        (
            "2024-04-01T00:00:00Z/2024-04-02T00:00:00Z",
            datetime(2024, 4, 1, tzinfo=UTC),
            datetime(2024, 4, 2, tzinfo=UTC),
        ),
        ("2024-04-01T00:00:00.0000000Z/PT6H", datetime(2024, 4, 1, tzinfo=UTC), datetime(2024, 4, 1, 6, tzinfo=UTC)),
        ("PT6H/2024-04-01T06:00:00Z", datetime(2024, 4, 1, tzinfo=UTC), datetime(2024, 4, 1, 6, tzinfo=UTC)),
    ],
)
def test_timespans(timespan, start, end):
    window = loganalytics.parse_timespan(timespan, NOW)
    assert window == loganalytics.Window(start.replace(tzinfo=None), end.replace(tzinfo=None))


@pytest.mark.parametrize("timespan", ["P", "PT", "12H", "yesterday", "2024-04-01/soon", "a/b/c"])
def test_invalid_timespans_are_a_bad_argument(timespan):
    with pytest.raises(errors.LogAnalyticsError) as raised:
        loganalytics.parse_timespan(timespan, NOW)
    assert raised.value.status == 400 and raised.value.code == "BadArgumentError"


def test_no_timespan_means_all_data():
    assert loganalytics.parse_timespan(None, NOW).unbounded
    assert loganalytics.parse_timespan("", NOW).unbounded


def test_window_intersection():
    day = loganalytics.parse_timespan("P1D", NOW)
    hour = loganalytics.parse_timespan("PT1H", NOW)
    assert day.intersect(hour) == hour
    assert loganalytics.Window().intersect(hour) == hour


def test_kusto_value_formats():
    assert loganalytics.kusto_datetime(datetime(2024, 5, 1, 10, 0, 0, 123400)) == "2024-05-01T10:00:00.1234Z"
    assert loganalytics.kusto_datetime(datetime(2024, 5, 1, 12, tzinfo=UTC)) == "2024-05-01T12:00:00Z"
    assert loganalytics.kusto_datetime(date(2024, 5, 1)) == "2024-05-01T00:00:00Z"
    assert loganalytics.kusto_timespan(timedelta(seconds=90)) == "00:01:30"
    assert loganalytics.kusto_timespan(timedelta(days=2, hours=3, microseconds=500)) == "2.03:00:00.0005000"
    assert loganalytics.kusto_timespan(-timedelta(minutes=5)) == "-00:05:00"
    assert loganalytics.kusto_real(float("nan")) == "NaN" and loganalytics.kusto_real(float("-inf")) == "-Infinity"
    assert loganalytics.kusto_dynamic([1, {"a": None}]) == '[1,{"a":null}]'


def test_fingerprint_ignores_what_every_reload_changes():
    first, second = demo_doc(NOW), demo_doc(NOW + timedelta(minutes=5))
    assert loganalytics.fingerprint(first) == loganalytics.fingerprint(second)
    second["logAnalytics"]["generate"]["seed"] = 1
    assert loganalytics.fingerprint(first) != loganalytics.fingerprint(second)
