"""The "Microsoft Sentinel entity" trigger body: one entity, run from an incident (written back to it) or from
nowhere (hunting: no incident to write to)."""

from __future__ import annotations

import copy

import pytest

from shared.actions.port import sentinel_incident_id
from shared.intake import IntakeError, detect, normalise
from shared.intake.model import AccountEntity, Dialect
from shared.playbook.matching import source_of
from tests.unit.intake.cases import sample


def test_an_account_run_from_an_incident() -> None:
    body = sample("sentinel-entity-trigger-account.json")
    assert detect(body) == "sentinel.entity_trigger"
    incident = normalise(body, max_entities=500)
    assert incident.dialect is Dialect.SENTINEL_ENTITY_TRIGGER
    [account] = incident.entities
    assert isinstance(account, AccountEntity) and account.aad_user_id == "1c9f2b8e-4a3d-4e6f-8b1c-2d3e4f5a6b01"
    summary = incident.summary()
    assert sentinel_incident_id(summary) == body["IncidentArmID"]  # the write-back goes to that incident
    assert source_of(summary) == "sentinel"
    assert incident.workspace is not None and incident.workspace.name == "law-sentinel"
    assert "adele.vance" in incident.title


def test_run_from_hunting_there_is_no_incident_and_the_kind_may_stand_beside_the_entity() -> None:
    body = copy.deepcopy(sample("sentinel-entity-trigger-account.json"))
    del body["IncidentArmID"]
    del body["Entity"]["kind"]
    incident = normalise(body, max_entities=500)
    assert incident.entities[0].kind == "Account" and sentinel_incident_id(incident.summary()) is None


@pytest.mark.parametrize(
    ("change", "target"),
    [
        ({"Entity": {"type": "Microsoft.SecurityInsights/Entities", "properties": {}}, "EntityType": None}, "Entity"),
        ({"Entity": "adele.vance"}, "body"),  # not an entity trigger at all then
        ({"IncidentArmID": 5}, "IncidentArmID"),
    ],
)
def test_a_broken_entity_trigger_is_a_400_naming_the_field(change: dict[str, object], target: str) -> None:
    body = {**sample("sentinel-entity-trigger-account.json"), **change}
    with pytest.raises(IntakeError) as error:
        normalise(body, max_entities=500)
    assert error.value.status == 400 and error.value.target.startswith(target)
