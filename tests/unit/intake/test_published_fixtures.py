"""Every published payload that carries an incident or alert parses to the expected Incident."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.intake import Dialect, Envelope, IntakeError, Severity, decode_json_body, normalise, parse_delivery
from shared.intake.model import AccountEntity, AzureResourceEntity, FileHashEntity, HostEntity, IpEntity
from tests.conftest import FIXTURES, PUBLISHED

LIMIT = 500


def load(relative: str) -> Any:
    return json.loads((PUBLISHED / relative).read_text(encoding="utf-8"))


def example_body(relative: str, status: str = "200") -> Any:
    return load(relative)["responses"][status]["body"]


def test_incident_trigger_composite() -> None:
    incident = normalise(load("sentinel_trigger/incident_trigger_SYNTHETIC_composite.json"), max_entities=LIMIT)
    assert incident.dialect is Dialect.SENTINEL_INCIDENT_TRIGGER
    assert incident.delivery_id == "3ab5bd37-8c4f-4e2b-9a58-0f0b4a1c2d3e"
    assert incident.arm_id is not None and incident.arm_id.endswith("/Incidents/73e01a99-5cd7-4139-a149-9f2736ff2ab5")
    assert incident.incident_number == 3177
    assert incident.severity is Severity.HIGH and incident.status == "New" and incident.title == "My incident"
    assert incident.tactics == ("InitialAccess", "Persistence")
    assert incident.workspace is not None
    assert incident.workspace.customer_id == "c8c99641-985d-4e4e-8e91-fb3466cd0e5b"
    assert (incident.workspace.subscription_id, incident.workspace.resource_group, incident.workspace.name) == (
        "d0cfe6b2-9ac0-4464-9919-dccaee2e48c0",
        "myRg",
        "myWorkspace",
    )
    assert [e.kind for e in incident.entities] == ["Account", "Host", "Ip", "AzureResource", "File", "FileHash", "Url"]
    account = incident.entities[0]
    assert isinstance(account, AccountEntity)
    assert account.aad_user_id == "f7033626-2572-46b1-bba0-06646f4f95b3"
    assert account.sid == "S-1-5-18"
    host = incident.entities[1]
    assert isinstance(host, HostEntity)
    assert host.azure_id is not None and host.azure_id.endswith("/virtualMachines/vm1")
    assert host.oms_agent_id == "70fbdad0-7441-4564-b2b5-2b8862d0fee0"
    ip = incident.entities[2]
    assert isinstance(ip, IpEntity) and ip.address == "10.3.2.8"
    assert len(incident.alerts) == 1
    assert incident.alerts[0].system_alert_id == "baa8a239-6fde-4ab7-a093-d09f7b75c58c"
    assert incident.alerts[0].severity is Severity.LOW


def test_incident_trigger_real_capture_repaired() -> None:
    payload = json.loads((FIXTURES / "own/incident_trigger_real_capture_REPAIRED.json").read_text())
    incident = normalise(payload, max_entities=LIMIT)
    assert incident.dialect is Dialect.SENTINEL_INCIDENT_TRIGGER
    assert incident.title == "test bug"
    assert incident.severity is Severity.INFORMATIONAL
    assert incident.entities == () and incident.alerts == ()  # the capture has no expanded arrays: handled
    assert incident.created_time is not None and incident.created_time.microsecond == 743333  # 7 digits, Z


def test_real_capture_as_published_is_rejected_as_invalid_json() -> None:
    raw = (PUBLISHED / "sentinel_trigger/incident_trigger_real_capture_partial_logicapps1093.txt").read_bytes()
    with pytest.raises(IntakeError) as caught:
        decode_json_body(raw, "application/json", max_bytes=1 << 20, max_depth=64)
    assert caught.value.code == "InvalidJson" and caught.value.status == 400


@pytest.mark.parametrize(
    ("relative", "status"),
    [
        ("sentinel_rest/incidents_get_2024-03-01.json", "200"),
        ("sentinel_rest/incidents_createorupdate_2025-09-01.json", "200"),
        ("sentinel_rest/incidents_createorupdate_2025-09-01.json", "201"),
    ],
)
def test_arm_incident_resource(relative: str, status: str) -> None:
    body = example_body(relative, status)
    incident = normalise(body, max_entities=LIMIT)
    assert incident.dialect is Dialect.SENTINEL_INCIDENT_RESOURCE
    assert incident.arm_id == body["id"]
    assert incident.title == body["properties"]["title"]
    assert incident.severity.value == body["properties"]["severity"]
    assert incident.incident_number == body["properties"]["incidentNumber"]
    assert incident.workspace is not None and incident.workspace.name == "myWorkspace"
    assert incident.entities == ()


def test_arm_incident_with_entities_and_alerts_lists() -> None:
    bundle = {
        "incident": example_body("sentinel_rest/incidents_get_2024-03-01.json"),
        "entities": example_body("sentinel_rest/incidents_listentities_2025-09-01.json"),
        "alerts": example_body("sentinel_rest/incidents_listalerts_2025-09-01.json"),
    }
    incident = normalise(bundle, max_entities=LIMIT)
    assert incident.dialect is Dialect.SENTINEL_INCIDENT_RESOURCE
    listed = bundle["entities"]["entities"]
    assert [e.kind for e in incident.entities] == [e["kind"] for e in listed]
    assert [e.id for e in incident.entities] == [e["id"] for e in listed]
    assert len(incident.alerts) == len(bundle["alerts"]["value"])
    assert incident.alerts[0].system_alert_id == bundle["alerts"]["value"][0]["properties"]["systemAlertId"]


def test_entities_list_example_entities() -> None:
    """The GetEntities example has Account, Host and File entities in the ARM dialect."""
    items = example_body("sentinel_rest/entities_list_2024-01-01-preview.json")["value"]
    ip = example_body("sentinel_rest/entities_get_ip_2024-01-01-preview.json")
    incident = normalise(
        {
            "incident": example_body("sentinel_rest/incidents_get_2024-03-01.json"),
            "entities": {"entities": [*items, ip]},
        },
        max_entities=LIMIT,
    )
    kinds = [e.kind for e in incident.entities]
    assert kinds == [item["kind"] for item in [*items, ip]]
    address = next(e for e in incident.entities if isinstance(e, IpEntity)).address
    assert address == ip["properties"]["address"]


def test_legacy_alert_trigger_resolves_refs_and_pascal_case() -> None:
    incident = normalise(load("sentinel_trigger/alert_trigger_SYNTHETIC_composite.json"), max_entities=LIMIT)
    assert incident.dialect is Dialect.SECURITY_ALERT
    assert incident.name == "2342409243234234_F2BFED55-5997-4FEA-95BD-BB7C6DDCD061"
    assert incident.workspace is not None and incident.workspace.customer_id == "077BA6B7-8759-4F41-9F97-017EB7D3E0A8"
    by_kind = {e.kind: e for e in incident.entities}
    host, account = by_kind["Host"], by_kind["Account"]
    assert isinstance(host, HostEntity) and isinstance(account, AccountEntity)
    assert host.azure_id is not None and host.azure_id.endswith("/virtualMachines/WebSrv1")
    assert account.account_name == "administrator" and account.nt_domain == "Contoso"
    assert account.host_ref == host.id == "$2"  # {"$ref": "2"} resolved to the host's id
    file_hash = by_kind["FileHash"]
    assert isinstance(file_hash, FileHashEntity) and file_hash.algorithm == "SHA256"
    resources = [e for e in incident.entities if isinstance(e, AzureResourceEntity)]
    # one from the azure-resource entity, one from AzureResourceId (a different, truncated id as published)
    assert len(resources) == 2


def test_defender_alert_resource() -> None:
    incident = normalise(
        example_body("defender_for_cloud/alerts_get_subscription_location_2022-01-01.json"), max_entities=LIMIT
    )
    assert incident.dialect is Dialect.DEFENDER_ALERT_RESOURCE
    assert incident.title == "Azure Security Center test alert (not a threat)"
    assert incident.severity is Severity.HIGH and incident.status == "Active"
    assert incident.techniques == ("T1059", "T1053", "T1072")
    assert incident.tactics == ("Execution",)
    assert incident.workspace is not None and incident.workspace.customer_id == "f419f624-acad-4d89-b86d-f62fa387f019"
    kinds = [e.kind for e in incident.entities]
    assert kinds == ["Ip", "AzureResource"]
    resource = incident.entities[1]
    assert isinstance(resource, AzureResourceEntity) and resource.resource_id.endswith("/virtualMachines/vm1")
    assert resource.subscription_id == "20ff7fc3-e762-44dd-bd96-b71116dcdc23"


def test_defender_workflow_automation_repaired() -> None:
    incident = normalise(load("defender_for_cloud/workflow_automation_alert_sample_REPAIRED.json"), max_entities=LIMIT)
    assert incident.dialect is Dialect.SECURITY_ALERT
    assert incident.title == "Suspicious process detected" and incident.status == "New"
    assert incident.alerts[0].compromised_entity == "WebSrv1"
    assert [e.kind for e in incident.entities] == ["AzureResource"]


def test_defender_workflow_automation_as_published_is_invalid_json() -> None:
    raw = (PUBLISHED / "defender_for_cloud/workflow_automation_alert_sample_AS_PUBLISHED_invalid_json.txt").read_bytes()
    with pytest.raises(IntakeError) as caught:
        decode_json_body(raw, "application/json", max_bytes=1 << 20, max_depth=64)
    assert caught.value.code == "InvalidJson"


def test_defender_activity_log_event() -> None:
    incident = normalise(load("defender_for_cloud/alert_activity_log_event_sample.json"), max_entities=LIMIT)
    assert incident.dialect is Dialect.DEFENDER_ACTIVITY_LOG
    assert incident.title == "PREVIEW - Role binding to the cluster-admin role detected"
    assert incident.severity is Severity.LOW
    assert incident.tactics == ("Persistence",)  # a JSON-encoded string in the flat property map


def test_event_grid_validation_event() -> None:
    delivery = parse_delivery(load("eventgrid/subscription_validation_event.json"), max_entities=LIMIT)
    expected = json.loads((PUBLISHED / "eventgrid/subscription_validation_response.json").read_text())
    assert delivery.validation_code == expected["validationResponse"]
    assert delivery.incidents == []


@pytest.mark.parametrize(
    "relative",
    [
        "eventgrid/eventgrid_schema_blob_created.json",
        "eventgrid/eventgrid_schema_custom_topic.json",
        "eventgrid/resource_write_success.json",
        "eventgrid/cloudevents_1.0_blob_created.json",
    ],
)
def test_event_grid_events_without_alerts_are_ignored_not_rejected(relative: str) -> None:
    payload = load(relative)
    delivery = parse_delivery(payload, max_entities=LIMIT)
    assert delivery.incidents == []
    events = payload if isinstance(payload, list) else [payload]
    assert [i["id"] for i in delivery.ignored] == [e["id"] for e in events]


def test_event_grid_schema_wrapping_a_defender_alert() -> None:
    alert = example_body("defender_for_cloud/alerts_get_subscription_location_2022-01-01.json")
    envelope = load("eventgrid/eventgrid_schema_blob_created.json")[0]
    delivery = parse_delivery(
        [dict(envelope, eventType="Microsoft.Security.SecurityAlert", data=alert)], max_entities=LIMIT
    )
    [incident] = delivery.incidents
    assert incident.envelope is Envelope.EVENT_GRID and incident.delivery_id == envelope["id"]
    assert incident.dialect is Dialect.DEFENDER_ALERT_RESOURCE


def test_cloudevent_wrapping_a_workflow_automation_alert() -> None:
    alert = load("defender_for_cloud/workflow_automation_alert_sample_REPAIRED.json")
    event = dict(
        load("eventgrid/cloudevents_1.0_blob_created.json"), type="Microsoft.Security.SecurityAlert", data=alert
    )
    [incident] = parse_delivery(event, max_entities=LIMIT).incidents
    assert incident.envelope is Envelope.CLOUD_EVENTS and incident.dialect is Dialect.SECURITY_ALERT
    # a CloudEvents batch (an array) works the same way
    [batched] = parse_delivery([event], max_entities=LIMIT).incidents
    assert batched == incident
