"""The admin API: tenant document round trip, reset, injected faults, enforced rate limits (with timeScale),
the request log and the connection facts. Requests go over real HTTPS with tokens from the emulated managed
identity (azure-identity's DefaultAzureCredential)."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from azure.identity import DefaultAzureCredential

SUBSCRIPTION = "8c2b5f0e-3d4a-4b6c-9a1e-7f2d3c4b5a60"
WORKSPACE_ID = "2b7e4c1d-9f3a-4e5b-8c6d-1a0f9e8d7c6b"
ADELE = "1c9f2b8e-4a3d-4e6f-8b1c-2d3e4f5a6b01"
LEE = "1c9f2b8e-4a3d-4e6f-8b1c-2d3e4f5a6b04"
INCIDENT = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-soc/providers/Microsoft.OperationalInsights/workspaces/"
    "law-sentinel/providers/Microsoft.SecurityInsights/Incidents/3f6c2a9e-1b7d-4c5e-8a2f-0d9e8c7b6a51"
)
AUDIENCES = {
    "graph": "https://graph.microsoft.com/.default",
    "arm": "https://management.azure.com/.default",
    "loganalytics": "https://api.loganalytics.io/.default",
}
_credential = DefaultAzureCredential()


def headers(service: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {_credential.get_token(AUDIENCES[service]).token}"}


class Api:
    """Plain HTTPS calls to the emulated services, each with a token for its audience."""

    def __init__(self, cloud: Any) -> None:
        self.http = httpx.Client(base_url=cloud.url, verify=cloud.ca_path, timeout=30)

    def graph(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self.http.request(method, f"/v1.0{path}", headers=headers("graph"), **kw)

    def arm(self, method: str, path: str, **kw: Any) -> httpx.Response:
        params = {"api-version": "2024-01-01", **kw.pop("params", {})}
        return self.http.request(method, path, headers=headers("arm"), params=params, **kw)

    def query(self, kql: str = "print 1") -> httpx.Response:
        return self.http.post(
            f"/v1/workspaces/{WORKSPACE_ID}/query", headers=headers("loganalytics"), json={"query": kql}
        )


@pytest.fixture
def api(cloud: Any) -> Iterator[Api]:
    client = Api(cloud)
    yield client
    client.http.close()


def add_fault(cloud: Any, spec: dict[str, Any]) -> dict[str, Any]:
    response = cloud.admin.post("/faults", json=spec)
    assert response.status_code == 201, response.text
    fault: dict[str, Any] = response.json()["value"][0]
    return fault


def add_limits(cloud: Any, spec: dict[str, Any]) -> list[dict[str, Any]]:
    response = cloud.admin.post("/limits", json=spec)
    assert response.status_code == 201, response.text
    limits: list[dict[str, Any]] = response.json()["value"]
    return limits


# ---------------------------------------------------------------------------------------------------- tenant


def test_tenant_document_round_trips(cloud):
    doc = cloud.tenant()
    assert {"tenant", "graph"} <= set(doc)
    assert doc["tenant"]["id"] == "6f1d3c2e-5a4b-4c8d-9e7f-0a1b2c3d4e5f"
    response = cloud.admin.put("/tenant", json=doc)
    assert response.status_code == 200, response.text
    assert cloud.tenant() == doc


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ([1, 2], "must be a JSON object"),
        ({"tenant": {}, "grpah": {}}, "unknown top-level section(s): grpah"),
        ({"graph": {"users": "nobody"}}, "graph.users must be a list"),
        (
            {
                "graph": {
                    "users": [{"userPrincipalName": "a@contoso.com"}],
                    "groups": [{"displayName": "G", "members": ["ghost"]}],
                }
            },
            "member 'ghost' is not a user or group",
        ),
        ({"graph": "flat"}, "section 'graph' must be a mapping"),
    ],
)
def test_put_rejects_a_malformed_document_and_keeps_the_state(cloud, doc, fragment):
    before = cloud.tenant()
    response = cloud.admin.put("/tenant", json=doc)
    assert response.status_code == 400
    assert fragment in response.json()["error"]["message"]
    assert cloud.tenant() == before


def test_put_rejects_invalid_json(cloud):
    response = cloud.admin.put("/tenant", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400


def test_a_replaced_tenant_is_what_the_services_serve_until_reset(cloud, api):
    doc = cloud.tenant()
    doc["graph"]["users"] = [u for u in doc["graph"]["users"] if u["id"] != LEE]
    for role in doc["graph"]["directoryRoles"]:
        role["members"] = [m for m in role["members"] if m != LEE]
    for group in doc["graph"]["groups"]:
        group["members"] = [m for m in group["members"] if m != LEE]
    doc["graph"]["users"].append({"userPrincipalName": "new.hire@contoso.com", "displayName": "New Hire"})
    assert cloud.admin.put("/tenant", json=doc).status_code == 200
    assert api.graph("GET", f"/users/{LEE}").status_code == 404
    new = api.graph("GET", "/users/new.hire@contoso.com").json()
    assert new["displayName"] == "New Hire" and len(new["id"]) == 36  # derived id filled in
    cloud.admin.post("/reset").raise_for_status()
    assert api.graph("GET", f"/users/{LEE}").status_code == 200
    assert api.graph("GET", "/users/new.hire@contoso.com").status_code == 404


def test_reset_undoes_changes_made_through_the_apis(cloud, api):
    assert api.graph("PATCH", f"/users/{ADELE}", json={"accountEnabled": False}).status_code == 204
    assert api.graph("GET", f"/users/{ADELE}", params={"$select": "accountEnabled"}).json()["accountEnabled"] is False
    cloud.admin.post("/reset").raise_for_status()
    assert api.graph("GET", f"/users/{ADELE}", params={"$select": "accountEnabled"}).json()["accountEnabled"] is True


def test_reset_keeps_faults_and_limits_until_deleted(cloud):
    add_fault(cloud, {"match": "GET /v1.0/users", "status": 503})
    add_limits(cloud, {"preset": "real"})
    cloud.admin.post("/reset").raise_for_status()
    assert len(cloud.admin.get("/faults").json()["value"]) == 1
    assert len(cloud.admin.get("/limits").json()["value"]) > 5
    assert cloud.admin.delete("/faults").status_code == 204
    assert cloud.admin.delete("/limits").status_code == 204
    assert cloud.admin.get("/faults").json()["value"] == []
    assert cloud.admin.get("/limits").json()["value"] == []


# ---------------------------------------------------------------------------------------------------- faults


def test_fault_fires_count_times_then_stops(cloud, api):
    fault = add_fault(cloud, {"match": "GET /v1.0/users/*", "status": 503, "count": 2})
    statuses = [api.graph("GET", f"/users/{ADELE}").status_code for _ in range(4)]
    assert statuses == [503, 503, 200, 200]
    listed = cloud.admin.get("/faults").json()["value"][0]
    assert listed["id"] == fault["id"]
    assert (listed["fired"], listed["count"]) == (2, 0)


def test_fault_matches_route_pattern_and_method(cloud, api):
    add_fault(cloud, {"match": "PATCH /v1.0/users/{user_id}", "status": 500})
    assert api.graph("GET", f"/users/{ADELE}").status_code == 200
    response = api.graph("PATCH", f"/users/{ADELE}", json={"jobTitle": "x"})
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "InternalServerError"
    assert "innerError" in response.json()["error"]


def test_fault_matches_a_field_set(cloud, api):
    add_fault(
        cloud, {"match": {"method": "GET", "path": "/v1.0/identityProtection/*", "service": "graph"}, "status": 504}
    )
    assert api.graph("GET", "/identityProtection/riskyUsers").status_code == 504
    assert api.graph("GET", "/users").status_code == 200


def test_fault_error_bodies_take_each_services_shape(cloud, api):
    add_fault(cloud, {"match": "GET /subscriptions/*", "status": 503, "retryAfter": 7})
    add_fault(cloud, {"match": "POST /v1/*", "status": 500, "code": "ServiceError", "message": "boom"})
    arm = api.arm("GET", f"/subscriptions/{SUBSCRIPTION}")
    assert arm.status_code == 503
    assert arm.headers["retry-after"] == "7"
    assert arm.json() == {"error": {"code": "ServiceUnavailable", "message": arm.json()["error"]["message"]}}
    query = api.query()
    assert query.status_code == 500
    assert query.json()["error"]["code"] == "ServiceError"
    assert query.json()["error"]["message"] == "boom"
    assert "correlationId" in query.json()["error"]


def test_fault_429_carries_retry_after_only_when_asked(cloud, api):
    add_fault(cloud, {"match": "GET /v1.0/users", "status": 429, "retryAfter": 2})
    add_fault(cloud, {"match": "GET /v1.0/identityProtection/riskyUsers", "status": 429, "retryAfter": None})
    with_header = api.graph("GET", "/users")
    without = api.graph("GET", "/identityProtection/riskyUsers")
    assert (with_header.status_code, with_header.headers.get("retry-after")) == (429, "2")
    assert (without.status_code, without.headers.get("retry-after")) == (429, None)
    assert without.json()["error"]["code"] == "TooManyRequests"


def test_fault_error_rate_is_a_probability(cloud, api):
    add_fault(cloud, {"match": "GET /v1.0/users/*", "status": 500, "errorRate": 0.5})
    failures = sum(api.graph("GET", f"/users/{ADELE}").status_code == 500 for _ in range(100))
    assert 20 <= failures <= 80


def test_fixed_latency_is_added(cloud, api):
    add_fault(cloud, {"match": "GET /v1.0/users/*", "latency": {"fixedMs": 150}})
    started = time.perf_counter()
    assert api.graph("GET", f"/users/{ADELE}").status_code == 200
    assert time.perf_counter() - started >= 0.15
    assert cloud.requests(path="/v1.0/users/*")[-1]["durationMs"] >= 150


def test_latency_distribution_has_the_asked_median(cloud, api):
    add_fault(cloud, {"match": "GET /v1.0/users/*", "latency": {"distribution": {"p50": 10, "p99": 40}}})
    for _ in range(31):
        api.graph("GET", f"/users/{ADELE}")
    durations = [r["durationMs"] for r in cloud.requests(path="/v1.0/users/*")]
    assert 5 <= statistics.median(durations) <= 20
    assert max(durations) > statistics.median(durations)  # a spread, not a fixed delay


def test_fault_after_the_handler_loses_the_response_but_keeps_the_write(cloud, api):
    add_fault(cloud, {"match": "PATCH /v1.0/users/*", "status": 500, "after": True, "count": 1})
    assert api.graph("PATCH", f"/users/{ADELE}", json={"accountEnabled": False}).status_code == 500
    user = api.graph("GET", f"/users/{ADELE}", params={"$select": "accountEnabled"}).json()
    assert user["accountEnabled"] is False


def test_fault_can_be_deleted_by_id(cloud, api):
    fault = add_fault(cloud, {"match": "GET /v1.0/users", "status": 500})
    assert cloud.admin.delete(f"/faults/{fault['id']}").status_code == 204
    assert cloud.admin.delete(f"/faults/{fault['id']}").status_code == 404
    assert api.graph("GET", "/users").status_code == 200


@pytest.mark.parametrize(
    "spec",
    [
        {"match": "GET /v1.0/users"},  # neither latency nor error
        {"status": 200},
        {"status": 500, "errorRate": 2},
        {"status": 500, "count": 0},
        {"latency": {"distribution": {"p50": 50, "p99": 10}}},
        {"status": 500, "colour": "red"},
        {"match": 42, "status": 500},
    ],
)
def test_invalid_faults_are_400(cloud, spec):
    response = cloud.admin.post("/faults", json=spec)
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("Invalid fault")


# ---------------------------------------------------------------------------------------------------- limits


def test_real_preset_identity_protection_is_one_per_second_without_retry_after(cloud, api):
    add_limits(cloud, {"preset": "real", "timeScale": 10})  # 1 request per 0.1 s
    first = api.graph("GET", "/identityProtection/riskyUsers")
    second = api.graph("GET", f"/identityProtection/riskyUsers/{ADELE}")
    assert first.status_code == 200
    assert second.status_code == 429
    assert "retry-after" not in second.headers
    assert second.json()["error"]["code"] == "TooManyRequests"
    time.sleep(0.12)
    assert api.graph("GET", "/identityProtection/riskDetections").status_code == 200
    limit = next(x for x in cloud.admin.get("/limits").json()["value"] if x["name"] == "graph-identity-protection")
    assert (limit["admitted"], limit["rejected"]) == (2, 1)


def test_real_preset_sentinel_comment_puts_are_75_per_five_minutes(cloud, api):
    add_limits(cloud, {"preset": "real", "timeScale": 60})  # the 5-minute window lasts 5 s
    statuses = [
        api.arm("PUT", f"{INCIDENT}/comments/c-{i}", json={"properties": {"message": f"note {i}"}}).status_code
        for i in range(76)
    ]
    assert statuses[:75] == [201] * 75
    assert statuses[75] == 429
    throttled = api.arm("PUT", f"{INCIDENT}/comments/c-76", json={"properties": {"message": "late"}})
    assert throttled.status_code == 429
    assert 1 <= int(throttled.headers["retry-after"]) <= 5
    assert set(throttled.json()) == {"error"}
    assert api.arm("GET", INCIDENT).status_code == 200  # reads are not in that window


def test_real_preset_arm_buckets_report_remaining_requests(cloud, api):
    add_limits(cloud, {"preset": "real"})
    first = api.arm("GET", f"/subscriptions/{SUBSCRIPTION}")
    second = api.arm("GET", f"/subscriptions/{SUBSCRIPTION}/resourcegroups")
    remaining = [int(r.headers["x-ms-ratelimit-remaining-subscription-reads"]) for r in (first, second)]
    assert remaining[0] == 249
    assert remaining[1] < remaining[0]


def test_real_preset_graph_resource_units(cloud, api):
    add_limits(cloud, {"preset": "real"})
    assert api.graph("GET", "/users").headers["x-ms-resource-unit"] == "2"
    assert api.graph("GET", "/users", params={"$select": "id"}).headers["x-ms-resource-unit"] == "1"
    assert api.graph("GET", f"/users/{ADELE}").headers["x-ms-resource-unit"] == "1"


async def test_real_preset_log_analytics_allows_five_concurrent_queries(cloud):
    # A 300 ms query holds its slot; with timeScale 1000 a queued query gives up after 0.18 s (3 minutes real).
    add_fault(cloud, {"match": "POST /v1/workspaces/*", "latency": {"fixedMs": 300}})
    add_limits(cloud, {"preset": "real", "timeScale": 1000})
    token = headers("loganalytics")
    async with httpx.AsyncClient(base_url=cloud.url, verify=cloud.ca_path, timeout=30) as http:
        responses = await asyncio.gather(*[
            http.post(f"/v1/workspaces/{WORKSPACE_ID}/query", headers=token, json={"query": "print 1"})
            for _ in range(7)
        ])  # fmt: skip
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(429) == 2, statuses
    rejected = next(r for r in responses if r.status_code == 429)
    assert rejected.json()["error"]["code"] == "ThrottledError"


def test_custom_window_limit_on_a_route(cloud, api):
    limits = add_limits(
        cloud,
        {"limits": [{"name": "three-users", "match": "GET /v1.0/users/{user_id}", "requests": 3, "perSeconds": 60}]},
    )
    assert limits[0]["name"] == "three-users"
    statuses = [api.graph("GET", f"/users/{ADELE}").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    late = api.graph("GET", f"/users/{ADELE}")
    assert 55 <= int(late.headers["retry-after"]) <= 60
    assert api.graph("GET", "/users").status_code == 200  # other routes are not limited
    cloud.admin.delete("/limits")
    assert api.graph("GET", f"/users/{ADELE}").status_code == 200


async def test_custom_concurrency_limit_with_and_without_a_queue(cloud):
    add_fault(cloud, {"match": "GET /v1.0/users/*", "latency": {"fixedMs": 200}})
    token = headers("graph")

    async def two_at_once() -> list[int]:
        async with httpx.AsyncClient(base_url=cloud.url, verify=cloud.ca_path, timeout=30) as http:
            responses = await asyncio.gather(*[http.get(f"/v1.0/users/{ADELE}", headers=token) for _ in range(2)])
        return sorted(r.status_code for r in responses)

    add_limits(cloud, {"limits": [{"name": "one", "match": "GET /v1.0/users/*", "concurrent": 1}]})
    assert await two_at_once() == [200, 429]
    add_limits(
        cloud,
        {
            "limits": [
                {"name": "one", "match": "GET /v1.0/users/*", "concurrent": 1, "queue": 1, "queueTimeoutSeconds": 5}
            ]
        },
    )  # same name replaces
    assert await two_at_once() == [200, 200]


@pytest.mark.parametrize(
    "spec",
    [
        {"preset": "imaginary"},
        {},
        {"limits": [{"match": "GET /v1.0/users"}]},
        {"limits": [{"requests": 0}]},
        {"preset": "real", "timeScale": 0},
        {"limits": "all"},
    ],
)
def test_invalid_limits_are_400(cloud, spec):
    response = cloud.admin.post("/limits", json=spec)
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("Invalid limits")


# ---------------------------------------------------------------------------------------------------- request log


def test_request_log_records_and_filters(cloud, api):
    started = time.time()
    api.graph("GET", f"/users/{ADELE}", params={"$select": "id"})
    api.graph("PATCH", f"/users/{ADELE}", json={"accountEnabled": False})
    api.arm("GET", f"/subscriptions/{SUBSCRIPTION}")
    cloud.admin.get("/tenant")  # admin calls are not logged
    everything = cloud.requests()
    assert [r["method"] for r in everything if r["service"] != "identity"] == ["GET", "PATCH", "GET"]
    patch = cloud.requests(method="patch")
    assert len(patch) == 1
    assert patch[0] | {"time": 0, "durationMs": 0} == {
        "time": 0, "durationMs": 0, "method": "PATCH", "path": f"/v1.0/users/{ADELE}", "query": "",
        "body": {"accountEnabled": False}, "status": 204, "service": "graph", "pattern": "/v1.0/users/{user_id}",
    }  # fmt: skip
    assert patch[0]["time"] >= started - 1
    assert [r["query"] for r in cloud.requests(service="graph", method="GET")] == ["%24select=id"]
    assert len(cloud.requests(path="/subscriptions/*")) == 1
    assert len(cloud.requests(pattern="/v1.0/users/{user_id}")) == 2
    assert len(cloud.requests(status="204")) == 1
    assert cloud.requests(since=str(time.time() + 60)) == []
    assert cloud.admin.delete("/requests").status_code == 204
    assert cloud.requests() == []


# ---------------------------------------------------------------------------------------------------- connection


def test_connection_facts(cloud):
    facts = cloud.admin.get("/connection").json()
    assert facts["graph"] == f"{cloud.url}/v1.0"
    assert facts["arm"] == facts["logAnalytics"] == cloud.url
    assert facts["tenantId"] == "6f1d3c2e-5a4b-4c8d-9e7f-0a1b2c3d4e5f"
    assert facts["subscriptionId"] == SUBSCRIPTION
    assert SUBSCRIPTION in facts["subscriptionIds"]
    assert facts["workspaceId"] == WORKSPACE_ID
    assert facts["workspace"]["name"] == "law-sentinel"
    assert facts["workspace"]["resourceGroup"] == "rg-soc"
    assert facts["caCertPath"] == cloud.ca_path
    with httpx.Client(verify=facts["caCertPath"]) as http:
        token = http.get(
            facts["identityEndpoint"],
            params={"resource": "https://graph.microsoft.com", "api-version": "2019-08-01"},
            headers={"X-IDENTITY-HEADER": facts["identityHeader"]},
        )
    assert token.status_code == 200
    assert facts["environment"]["IDENTITY_ENDPOINT"] == facts["identityEndpoint"]
