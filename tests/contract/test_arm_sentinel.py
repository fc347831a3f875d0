"""Microsoft Sentinel (SecurityInsights) against the real azure-mgmt-securityinsight 1.0.0 client (sync and .aio):
incidents (list/filter/get/create/update/delete with etags), comments by client-chosen id, entities and alerts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.identity import DefaultAzureCredential
from azure.identity.aio import DefaultAzureCredential as AsyncDefaultAzureCredential
from azure.mgmt.securityinsight import SecurityInsights
from azure.mgmt.securityinsight.aio import SecurityInsights as AsyncSecurityInsights
from azure.mgmt.securityinsight.models import Incident, IncidentComment, IncidentLabel, IncidentOwnerInfo

from tests.contract.arm_helpers import (
    SUBSCRIPTION,
    VM_WEB,
    WORKSPACE,
    WORKSPACE_CUSTOMER_ID,
    arm_http,
    error_code,
    mgmt_options,
    published,
    same_shape,
)

RG, WS = "rg-soc", "law-sentinel"
ADELE_INCIDENT = "3f6c2a9e-1b7d-4c5e-8a2f-0d9e8c7b6a51"
MALWARE_INCIDENT = "3f6c2a9e-1b7d-4c5e-8a2f-0d9e8c7b6a52"
IP_INCIDENT = "3f6c2a9e-1b7d-4c5e-8a2f-0d9e8c7b6a53"
BREAKGLASS_INCIDENT = "3f6c2a9e-1b7d-4c5e-8a2f-0d9e8c7b6a54"
CLOSED_INCIDENT = "3f6c2a9e-1b7d-4c5e-8a2f-0d9e8c7b6a50"
ADELE = "1c9f2b8e-4a3d-4e6f-8b1c-2d3e4f5a6b01"
BREAKGLASS = "1c9f2b8e-4a3d-4e6f-8b1c-2d3e4f5a6b05"
RIPOSTE_PRINCIPAL = "0d7c3b2a-8e4f-4a1b-9c6d-5e4f3a2b1c0d"
INCIDENTS = f"{WORKSPACE}/providers/Microsoft.SecurityInsights/incidents"
API = {"api-version": "2021-10-01"}


@pytest.fixture
def sentinel(cloud: Any) -> Iterator[SecurityInsights]:
    client = SecurityInsights(DefaultAzureCredential(), SUBSCRIPTION, **mgmt_options(cloud))
    yield client
    client.close()


def new_incident(**overrides: Any) -> Incident:
    values: dict[str, Any] = {"title": "Riposte test incident", "severity": "Low", "status": "New"}
    values.update(overrides)
    return Incident(**values)


# ---- incidents ----------------------------------------------------------------------------------------------------


def test_list_incidents_with_filter_orderby_and_top(cloud, sentinel):
    everything = list(sentinel.incidents.list(RG, WS))
    assert len(everything) == 5
    titles = {i.title for i in everything}
    assert "Suspicious sign-in activity for adele.vance" in titles
    assert "Malware detected on vm-web-01" in titles
    assert "Connection from known malicious IP 203.0.113.66" in titles
    assert "Suspicious sign-in activity for breakglass-01" in titles

    open_ones = list(sentinel.incidents.list(RG, WS, filter="properties/status eq 'New'"))
    assert len(open_ones) == 4
    high_new = list(
        sentinel.incidents.list(RG, WS, filter="properties/severity eq 'High' and properties/status ne 'Closed'")
    )
    assert {i.name for i in high_new} == {ADELE_INCIDENT, MALWARE_INCIDENT, BREAKGLASS_INCIDENT}
    newest = list(sentinel.incidents.list(RG, WS, orderby="properties/createdTimeUtc desc", top=2))
    assert [i.name for i in newest] == [BREAKGLASS_INCIDENT, IP_INCIDENT]
    by_number = list(sentinel.incidents.list(RG, WS, orderby="properties/incidentNumber asc"))
    assert [i.incident_number for i in by_number] == [1038, 1042, 1043, 1044, 1045]


def test_long_lists_are_paged_with_next_link(cloud, sentinel):
    with arm_http(cloud) as http:
        for number in range(50):
            body = {"properties": {"title": f"Bulk {number}", "severity": "Informational", "status": "New"}}
            assert http.put(f"{INCIDENTS}/bulk-{number}", params=API, json=body).status_code == 201
        first_page = http.get(INCIDENTS, params=API).json()
    assert len(first_page["value"]) == 50
    assert "$skipToken=50" in first_page["nextLink"]
    assert len(list(sentinel.incidents.list(RG, WS))) == 55  # the SDK follows nextLink
    numbers = [
        i.incident_number for i in sentinel.incidents.list(RG, WS, filter="properties/severity eq 'Informational'")
    ]
    assert sorted(numbers) == list(range(1046, 1096))


def test_invalid_filter_is_400(cloud):
    with arm_http(cloud) as http:
        response = http.get(INCIDENTS, params={**API, "$filter": "title has 'x'"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest"


def test_get_incident_matches_the_published_example(cloud, sentinel):
    incident = sentinel.incidents.get(RG, WS, ADELE_INCIDENT)
    assert incident.severity == "High" and incident.status == "New"
    assert incident.incident_number == 1042
    assert incident.etag.startswith('"') and incident.etag.endswith('"')
    assert incident.additional_data.alerts_count == 1
    assert incident.additional_data.alert_product_names == ["Azure Active Directory Identity Protection"]
    assert incident.owner.object_id is None
    assert incident.incident_url.endswith(f"/Incidents/{ADELE_INCIDENT}")

    with arm_http(cloud) as http:
        raw = http.get(f"{INCIDENTS}/{ADELE_INCIDENT}", params=API).json()
    example = published("sentinel_rest/incidents_get_2024-03-01.json")["responses"]["200"]["body"]
    # An open, unassigned incident has no classification and a null owner.
    open_incident = frozenset(
        {
            "properties.classification",
            "properties.classificationComment",
            "properties.classificationReason",
            "properties.owner.objectId",
            "properties.owner.email",
            "properties.owner.userPrincipalName",
            "properties.owner.assignedTo",
        }
    )
    assert same_shape(raw, example, open_incident) == []
    assert raw["type"] == "Microsoft.SecurityInsights/Incidents"
    for hidden in ("entities", "alerts", "comments"):
        assert hidden not in raw and hidden not in raw["properties"]


def test_closed_incident_has_classification_and_resolved_owner(cloud, sentinel):
    closed = sentinel.incidents.get(RG, WS, CLOSED_INCIDENT)
    assert (closed.status, closed.classification, closed.classification_reason) == (
        "Closed",
        "BenignPositive",
        "SuspiciousButExpected",
    )
    assert closed.owner.user_principal_name == "johanna.lorenz@contoso.com"
    assert closed.owner.assigned_to == "Johanna Lorenz"


def test_create_update_and_stale_etag(cloud, sentinel):
    created = sentinel.incidents.create_or_update(
        RG, WS, "riposte-test-1", new_incident(labels=[IncidentLabel(label_name="riposte")])
    )
    assert created.incident_number == 1046
    assert created.labels[0].label_name == "riposte" and created.labels[0].label_type == "User"
    assert created.created_time_utc is not None
    first_status = cloud.requests(service="arm")[-1]["status"]
    assert first_status == 201

    created.status = "Active"
    created.owner = IncidentOwnerInfo(object_id=ADELE)
    updated = sentinel.incidents.create_or_update(RG, WS, "riposte-test-1", created)
    assert cloud.requests(service="arm")[-1]["status"] == 200
    assert updated.etag != created.etag
    assert updated.owner.user_principal_name == "adele.vance@contoso.com"
    assert updated.owner.assigned_to == "Adele Vance"
    assert updated.last_modified_time_utc >= created.last_modified_time_utc
    assert updated.incident_number == 1046 and updated.created_time_utc == created.created_time_utc

    stale = created  # still carries the first etag
    stale.title = "Lost update"
    with pytest.raises(ResourceExistsError) as conflict:
        sentinel.incidents.create_or_update(RG, WS, "riposte-test-1", stale)
    assert conflict.value.status_code == 409
    assert error_code(conflict.value) == "Conflict"
    assert sentinel.incidents.get(RG, WS, "riposte-test-1").title == "Riposte test incident"


def test_if_match_header_mismatch_is_412(cloud):
    with arm_http(cloud) as http:
        current = http.get(f"{INCIDENTS}/{IP_INCIDENT}", params=API).json()
        body = {"properties": {**current["properties"], "status": "Active"}}
        stale = http.put(f"{INCIDENTS}/{IP_INCIDENT}", params=API, json=body, headers={"If-Match": '"not-it"'})
        fresh = http.put(f"{INCIDENTS}/{IP_INCIDENT}", params=API, json=body, headers={"If-Match": current["etag"]})
    assert stale.status_code == 412
    assert stale.json()["error"]["code"] == "PreconditionFailed"
    assert fresh.status_code == 200
    assert fresh.json()["properties"]["status"] == "Active"


def test_create_answer_matches_the_published_example(cloud):
    example = published("sentinel_rest/incidents_createorupdate_2025-09-01.json")
    request = {"properties": dict(example["parameters"]["incident"]["properties"])}
    request["properties"]["owner"] = {"objectId": ADELE}
    with arm_http(cloud) as http:
        created = http.put(f"{INCIDENTS}/73e01a99-5cd7-4139-a149-9f2736ff2ab5", params=API, json=request)
    assert created.status_code == 201
    assert same_shape(created.json(), example["responses"]["201"]["body"]) == []
    assert created.json()["properties"]["classification"] == "FalsePositive"


@pytest.mark.parametrize(
    ("properties", "fragment"),
    [
        ({"severity": "Low", "status": "New"}, "Title"),
        ({"title": "t", "status": "New"}, "Severity"),
        ({"title": "t", "severity": "Low"}, "Status"),
        ({"title": "t", "severity": "Critical", "status": "New"}, "severity"),
        ({"title": "t", "severity": "Low", "status": "Closed"}, "Classification"),
    ],
)
def test_incident_validation(cloud, properties, fragment):
    with arm_http(cloud) as http:
        response = http.put(f"{INCIDENTS}/bad-one", params=API, json={"properties": properties})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest"
    assert fragment in response.json()["error"]["message"]


def test_close_with_classification(cloud, sentinel):
    incident = sentinel.incidents.get(RG, WS, BREAKGLASS_INCIDENT)
    incident.status = "Closed"
    incident.classification = "TruePositive"
    incident.classification_reason = "SuspiciousActivity"
    incident.classification_comment = "Break-glass sign-in confirmed malicious; account protected by guardrail."
    closed = sentinel.incidents.create_or_update(RG, WS, BREAKGLASS_INCIDENT, incident)
    assert closed.status == "Closed" and closed.classification == "TruePositive"


def test_delete_and_missing_incident(cloud, sentinel):
    sentinel.incidents.delete(RG, WS, IP_INCIDENT)
    with pytest.raises(ResourceNotFoundError) as missing:
        sentinel.incidents.get(RG, WS, IP_INCIDENT)
    assert error_code(missing.value) == "NotFound"
    assert len(list(sentinel.incidents.list(RG, WS))) == 4
    with pytest.raises(ResourceNotFoundError) as no_workspace:
        sentinel.incidents.get(RG, "law-other", ADELE_INCIDENT)
    assert error_code(no_workspace.value) == "ResourceNotFound"


def test_paths_are_case_insensitive(cloud):
    path = (
        f"/subscriptions/{SUBSCRIPTION}/resourcegroups/RG-SOC/providers/microsoft.operationalinsights/workspaces/"
        f"LAW-SENTINEL/providers/Microsoft.SecurityInsights/Incidents/{ADELE_INCIDENT.upper()}"
    )
    with arm_http(cloud) as http:
        response = http.get(path, params=API)
    assert response.status_code == 200
    assert response.json()["name"] == ADELE_INCIDENT


# ---- entities, alerts -----------------------------------------------------------------------------------------------


def test_incident_entities(cloud, sentinel):
    result = sentinel.incidents.list_entities(RG, WS, ADELE_INCIDENT)
    kinds = {e.kind: e for e in result.entities}
    assert set(kinds) == {"Account", "Ip"}
    account = kinds["Account"]
    assert (account.aad_user_id, account.account_name, account.upn_suffix) == (ADELE, "adele.vance", "contoso.com")
    assert kinds["Ip"].address == "95.173.136.70"
    assert {(m.entity_kind, m.count) for m in result.meta_data} == {("Account", 1), ("Ip", 1)}

    malware = sentinel.incidents.list_entities(RG, WS, MALWARE_INCIDENT)
    host = next(e for e in malware.entities if e.kind == "Host")
    resource = next(e for e in malware.entities if e.kind == "AzureResource")
    assert host.azure_id == VM_WEB and host.host_name == "vm-web-01"
    assert resource.resource_id == VM_WEB

    with arm_http(cloud) as http:
        raw = http.post(f"{INCIDENTS}/{ADELE_INCIDENT}/entities", params=API).json()
    example = published("sentinel_rest/incidents_listentities_2025-09-01.json")["responses"]["200"]["body"]
    assert same_shape(raw, example, frozenset({"entities[].properties.ntDomain"})) == []


def test_incident_alerts(cloud, sentinel):
    alerts = sentinel.incidents.list_alerts(RG, WS, MALWARE_INCIDENT).value
    [alert] = alerts
    assert alert.kind == "SecurityAlert"
    assert alert.alert_display_name == "'CoinMiner' malware was detected"
    assert alert.severity == "High"
    assert alert.tactics == ["Execution", "Impact"]
    with arm_http(cloud) as http:
        raw = http.post(f"{INCIDENTS}/{MALWARE_INCIDENT}/alerts", params=API).json()
        bookmarks = http.post(f"{INCIDENTS}/{MALWARE_INCIDENT}/bookmarks", params=API).json()
        entity = http.get(
            f"{WORKSPACE}/providers/Microsoft.SecurityInsights/entities/{raw['value'][0]['name']}", params=API
        )
    example = published("sentinel_rest/incidents_listalerts_2025-09-01.json")["responses"]["200"]["body"]
    assert same_shape(raw, example) == []
    assert raw["value"][0]["properties"]["resourceIdentifiers"][0]["workspaceId"] == WORKSPACE_CUSTOMER_ID
    assert bookmarks == {"value": []}
    assert entity.status_code == 200 and entity.json()["kind"] == "SecurityAlert"


# ---- comments -----------------------------------------------------------------------------------------------------


def test_comment_by_client_chosen_id_is_idempotent(cloud, sentinel):
    comment = IncidentComment(message="Riposte: disabled adele.vance@contoso.com and revoked her sessions.")
    first = sentinel.incident_comments.create_or_update(RG, WS, ADELE_INCIDENT, "riposte-run-42-step-1", comment)
    again = sentinel.incident_comments.create_or_update(RG, WS, ADELE_INCIDENT, "riposte-run-42-step-1", comment)
    statuses = [r["status"] for r in cloud.requests(service="arm") if r["method"] == "PUT"]
    assert statuses == [201, 200]
    assert first.name == again.name == "riposte-run-42-step-1"
    assert first.author.object_id == RIPOSTE_PRINCIPAL
    comments = list(sentinel.incident_comments.list(RG, WS, ADELE_INCIDENT))
    assert [c.name for c in comments] == ["riposte-run-42-step-1"]
    assert sentinel.incidents.get(RG, WS, ADELE_INCIDENT).additional_data.comments_count == 1
    fetched = sentinel.incident_comments.get(RG, WS, ADELE_INCIDENT, "RIPOSTE-RUN-42-STEP-1")
    assert fetched.message == comment.message

    with arm_http(cloud) as http:
        raw = http.get(f"{INCIDENTS}/{ADELE_INCIDENT}/comments/riposte-run-42-step-1", params=API).json()
    example = published("sentinel_rest/incidentcomments_createorupdate_2025-09-01.json")["responses"]["201"]["body"]
    app_author = frozenset({"properties.author.email", "properties.author.userPrincipalName"})  # null for an app
    assert same_shape(raw, example, app_author) == []


def test_comment_history_of_the_closed_incident(cloud, sentinel):
    [comment] = list(sentinel.incident_comments.list(RG, WS, CLOSED_INCIDENT))
    assert comment.author.name == "Johanna Lorenz"
    assert comment.message.startswith("Confirmed with Megan")


@pytest.mark.parametrize("message", ["", "x" * 30001])
def test_comment_message_is_required_and_limited_to_30000_chars(cloud, sentinel, message):
    with pytest.raises(HttpResponseError) as invalid:
        sentinel.incident_comments.create_or_update(RG, WS, ADELE_INCIDENT, "c1", IncidentComment(message=message))
    assert invalid.value.status_code == 400


def test_comment_of_exactly_30000_chars_is_accepted(cloud, sentinel):
    comment = sentinel.incident_comments.create_or_update(
        RG, WS, ADELE_INCIDENT, "c1", IncidentComment(message="x" * 30000)
    )
    assert len(comment.message) == 30000


def test_comment_on_a_missing_incident_is_404(cloud, sentinel):
    with pytest.raises(ResourceNotFoundError):
        sentinel.incident_comments.create_or_update(RG, WS, "no-such-incident", "c1", IncidentComment(message="hi"))


# ---- the async client, as the product uses it ------------------------------------------------------------------------


async def test_async_client_lists_updates_and_comments(cloud):
    async with (
        AsyncDefaultAzureCredential() as credential,
        AsyncSecurityInsights(credential, SUBSCRIPTION, **mgmt_options(cloud)) as sentinel,
    ):
        pages: Any = sentinel.incidents.list(RG, WS, filter="properties/status eq 'New'")  # typed as a page model
        names = [i.name async for i in pages]
        assert len(names) == 4
        incident = await sentinel.incidents.get(RG, WS, MALWARE_INCIDENT)
        incident.status = "Active"
        incident.labels = [IncidentLabel(label_name="riposte:isolated")]
        updated = await sentinel.incidents.create_or_update(RG, WS, MALWARE_INCIDENT, incident)
        await sentinel.incident_comments.create_or_update(
            RG, WS, MALWARE_INCIDENT, "isolation", IncidentComment(message="vm-web-01 isolated by Riposte.")
        )
        entities = await sentinel.incidents.list_entities(RG, WS, MALWARE_INCIDENT)
        comment_pages: Any = sentinel.incident_comments.list(RG, WS, MALWARE_INCIDENT)
        comments = [c.name async for c in comment_pages]
    assert updated.status == "Active"
    assert [label.label_name for label in updated.labels or []] == ["riposte:isolated"]
    assert {e.kind for e in entities.entities or []} == {"Host", "AzureResource", "FileHash"}
    assert comments == ["isolation"]
    stored = next(i for i in cloud.tenant()["sentinel"]["incidents"] if i["name"] == MALWARE_INCIDENT)
    assert stored["properties"]["status"] == "Active"
    assert stored["comments"][0]["properties"]["message"] == "vm-web-01 isolated by Riposte."
