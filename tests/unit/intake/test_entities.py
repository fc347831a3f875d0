"""Entities across the three dialects, and our own cases: many entities, none, unicode, Defender on VMs and accounts."""

from __future__ import annotations

from typing import Any

import pytest

from shared.intake import Dialect, IntakeError, normalise, parse_delivery
from shared.intake.entities import parse_entities
from shared.intake.model import (
    AccountEntity,
    AzureResourceEntity,
    HostEntity,
    IpEntity,
    MailboxEntity,
    ProcessEntity,
    UnknownEntity,
)
from tests.unit.intake.cases import account_trigger, ip_entity, sample, with_entities

LIMIT = 500


def test_every_documented_kind_gets_its_type() -> None:
    items = [
        {"kind": "Account", "id": "a", "properties": {"aadUserId": "u1", "accountName": "x", "upnSuffix": "c.com"}},
        {"kind": "Host", "id": "h", "properties": {"hostName": "h1", "azureID": "/sub/vm"}},
        {"kind": "Ip", "id": "i", "properties": {"address": "192.0.2.1"}},
        {"kind": "AzureResource", "id": "r", "properties": {"resourceId": "/subscriptions/s/rg"}},
        {"kind": "File", "id": "f", "properties": {"fileName": "evil.exe", "directory": "c:\\temp"}},
        {"kind": "FileHash", "id": "fh", "properties": {"algorithm": "SHA256", "hashValue": "ab" * 32}},
        {"kind": "Url", "id": "u", "properties": {"url": "https://evil.example/x"}},
        {"kind": "DnsResolution", "id": "d", "properties": {"domainName": "evil.example"}},
        {"kind": "Process", "id": "p", "properties": {"processId": 4242, "commandLine": "powershell -enc AAA"}},
        {"kind": "MailMessage", "id": "m", "properties": {"networkMessageId": "n1", "subject": "Invoice"}},
        {"kind": "Mailbox", "id": "mb", "properties": {"mailboxPrimaryAddress": "a@c.com", "upn": "a@c.com"}},
        {"kind": "CloudApplication", "id": "ca", "properties": {"appId": 11161, "name": "Office 365"}},
        {"kind": "SecurityGroup", "id": "sg", "properties": {"objectGuid": "g1", "distinguishedName": "CN=x"}},
        {"kind": "RegistryKey", "id": "rk", "properties": {"hive": "HKEY_LOCAL_MACHINE", "key": "SOFTWARE\\Run"}},
        {
            "kind": "RegistryValue",
            "id": "rv",
            "properties": {"name": "evil", "value": "c:\\evil.exe", "keyEntityId": "rk"},
        },
        {"kind": "Malware", "id": "mw", "properties": {"malwareName": "Emotet", "category": "Trojan"}},
        {"kind": "IoTDevice", "id": "iot", "properties": {"deviceId": "dev-1", "deviceName": "camera"}},
        {"kind": "Nic", "id": "nic", "properties": {"macAddress": "00-11"}},
    ]
    entities = parse_entities(items, target="e", max_entities=LIMIT)
    assert [e.kind for e in entities] == [item["kind"] for item in items]
    unknown = entities[-1]
    assert isinstance(unknown, UnknownEntity) and unknown.properties == {"macAddress": "00-11"}  # kept, not dropped
    process = entities[8]
    assert isinstance(process, ProcessEntity) and process.process_id == "4242"  # numbers become strings
    account = entities[0]
    assert isinstance(account, AccountEntity) and account.upn == "x@c.com"


@pytest.mark.parametrize(
    "item",
    [
        {"kind": "Account", "id": "a", "properties": {"AadUserId": "u1", "AccountName": "adele"}},  # casing drift
        {"kind": "account", "id": "a", "properties": {"aaduserid": "u1", "accountname": "adele"}},
        {"Type": "account", "$id": "1", "AadUserId": "u1", "Name": "adele"},  # Log Analytics dialect
        {"type": "account", "$id": "1", "aadUserId": "u1", "name": "adele"},  # Defender API dialect
    ],
)
def test_account_in_every_dialect_and_casing(item: dict[str, Any]) -> None:
    [account] = parse_entities([item], target="e", max_entities=LIMIT)
    assert isinstance(account, AccountEntity)
    assert account.aad_user_id == "u1" and account.account_name == "adele"


def test_kind_names_from_both_enums_are_matched() -> None:
    items = [
        {"Type": "IP", "$id": "1", "Address": "192.0.2.9"},
        {"Type": "URL", "$id": "2", "Url": "http://x.example"},
        {"Type": "dns", "$id": "3", "DomainName": "x.example"},
        {"Type": "azure-resource", "$id": "4", "ResourceId": "/subscriptions/s"},
    ]
    kinds = [e.kind for e in parse_entities(items, target="e", max_entities=LIMIT)]
    assert kinds == ["Ip", "Url", "DnsResolution", "AzureResource"]


def test_refs_resolve_and_inline_entities_are_hoisted() -> None:
    items = [
        {"$id": "2", "Type": "account", "Name": "svc", "Host": {"$id": "3", "Type": "host", "HostName": "srv"}},
        {"$ref": "3"},  # the inline host again, by reference: one entity
        {"$id": "4", "Type": "process", "ProcessId": "7", "Account": {"$ref": "2"}, "Host": {"$ref": "3"}},
    ]
    entities = parse_entities(items, target="Entities", max_entities=LIMIT)
    assert [e.kind for e in entities] == ["Host", "Account", "Process"]
    account = entities[1]
    process = entities[2]
    assert isinstance(account, AccountEntity) and account.host_ref == "$3"
    assert isinstance(process, ProcessEntity) and process.account_ref == "$2" and process.host_ref == "$3"


def test_unresolved_ref_names_the_entity() -> None:
    with pytest.raises(IntakeError) as caught:
        parse_entities([{"$ref": "9"}], target="Entities", max_entities=LIMIT)
    assert caught.value.code == "UnresolvedReference" and caught.value.target == "Entities[0]"


def test_entity_missing_its_identifier_is_rejected_with_the_path() -> None:
    payload = with_entities(account_trigger(), [{"id": "x", "kind": "Ip", "properties": {"friendlyName": "?"}}])
    with pytest.raises(IntakeError) as caught:
        normalise(payload, max_entities=LIMIT)
    assert caught.value.code == "MissingField"
    assert caught.value.target == "object.properties.relatedEntities[0].properties.address"


def test_entity_with_wrong_type_is_rejected_with_the_path() -> None:
    payload = with_entities(account_trigger(), [{"id": "x", "kind": "Ip", "properties": {"address": ["1.2.3.4"]}}])
    with pytest.raises(IntakeError) as caught:
        normalise(payload, max_entities=LIMIT)
    assert caught.value.code == "InvalidType"
    assert caught.value.target == "object.properties.relatedEntities[0].properties.address"


def test_many_entities_up_to_the_limit() -> None:
    payload = with_entities(account_trigger(), [ip_entity(i) for i in range(LIMIT)])
    incident = normalise(payload, max_entities=LIMIT)
    assert len(incident.entities) == LIMIT
    assert {e.address for e in incident.entities if isinstance(e, IpEntity)} == {
        ip_entity(i)["properties"]["address"] for i in range(LIMIT)
    }


def test_more_entities_than_the_limit_is_rejected() -> None:
    payload = with_entities(account_trigger(), [ip_entity(i) for i in range(LIMIT + 1)])
    with pytest.raises(IntakeError) as caught:
        normalise(payload, max_entities=LIMIT)
    assert caught.value.code == "TooManyEntities" and caught.value.target == "object.properties.relatedEntities"


def test_entity_less_incident() -> None:
    choices: list[list[Any] | None] = [[], None]  # an empty list, and null as Fusion incidents send it
    for entities in choices:
        payload = with_entities(account_trigger(), entities)
        incident = normalise(payload, max_entities=LIMIT)
        assert incident.entities == ()
        assert incident.title == "Suspicious sign-in activity for adele.vance"


def test_unicode_names_survive() -> None:
    account = {
        "id": "/e/1",
        "kind": "Account",
        "properties": {
            "accountName": "zoë.çelik",
            "upnSuffix": "müller.example",
            "displayName": "Zoë Çelik 李小龍 🛡️",
            "aadUserId": "1c9f2b8e-4a3d-4e6f-8b1c-2d3e4f5a6b99",
        },
    }
    payload = with_entities(account_trigger(), [account])
    payload["object"]["properties"]["title"] = "Connexion suspecte — zoë.çelik 🚨"
    incident = normalise(payload, max_entities=LIMIT)
    [entity] = incident.entities
    assert isinstance(entity, AccountEntity)
    assert entity.display_name == "Zoë Çelik 李小龍 🛡️" and entity.upn == "zoë.çelik@müller.example"
    assert incident.summary()["title"] == "Connexion suspecte — zoë.çelik 🚨"


def test_defender_alert_on_a_vm_names_the_vm_by_arm_id() -> None:
    [incident] = parse_delivery(sample("defender-alert-eventgrid.json"), max_entities=LIMIT).incidents
    hosts = [e for e in incident.entities if isinstance(e, HostEntity)]
    vm_id = (
        "/subscriptions/8c2b5f0e-3d4a-4b6c-9a1e-7f2d3c4b5a60/resourceGroups/rg-dev"
        "/providers/Microsoft.Compute/virtualMachines/vm-dev-02"
    )
    assert [h.azure_id for h in hosts] == [vm_id]
    # the resource identifier names the same VM: no duplicate AzureResource entity is invented
    assert not [e for e in incident.entities if isinstance(e, AzureResourceEntity)]
    account = next(e for e in incident.entities if isinstance(e, AccountEntity))
    assert account.host_ref == hosts[0].id


def test_defender_alert_on_an_account_keeps_the_aad_user_id() -> None:
    [incident] = parse_delivery(sample("defender-alert-cloudevent.json"), max_entities=LIMIT).incidents
    assert incident.dialect is Dialect.SECURITY_ALERT
    [account] = [e for e in incident.entities if isinstance(e, AccountEntity)]
    assert account.aad_user_id == "1c9f2b8e-4a3d-4e6f-8b1c-2d3e4f5a6b02"
    assert account.upn == "megan.bowen@contoso.com"


def test_mailbox_alias_names() -> None:
    [mailbox] = parse_entities(
        [{"Type": "mailbox", "$id": "1", "MailboxPrimaryAddress": "a@c.com", "AadId": "u9"}],
        target="e",
        max_entities=LIMIT,
    )
    assert isinstance(mailbox, MailboxEntity) and mailbox.aad_user_id == "u9"


def test_severity_and_kind_are_case_insensitive_across_the_payload() -> None:
    payload = account_trigger()
    payload["object"]["properties"]["severity"] = "high"
    payload["object"]["type"] = "microsoft.securityinsights/incidents"
    incident = normalise(payload, max_entities=LIMIT)
    assert incident.severity.value == "High"
