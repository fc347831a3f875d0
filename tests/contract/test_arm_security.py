"""Defender for Cloud (Microsoft.Security) against the real azure-mgmt-security SecurityCenter client (sync): the
assessments of a resource and of a subscription, the recommendations' metadata, the secure score and its controls
parse into the SDK's models; a missing resource and secure score are ARM's 404s."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.identity import DefaultAzureCredential
from azure.mgmt.security import SecurityCenter

from tests.contract.arm_helpers import STORAGE, SUB, SUBSCRIPTION, VM_WEB


@pytest.fixture
def security(cloud: Any) -> Iterator[SecurityCenter]:
    client = SecurityCenter(DefaultAzureCredential(), SUBSCRIPTION, base_url=cloud.url, connection_verify=cloud.ca_path)
    yield client
    client.close()  # type: ignore[no-untyped-call]  # the generated client's close() is untyped


def test_a_resources_assessments(security: SecurityCenter) -> None:
    found = list(security.assessments.list(VM_WEB.lstrip("/")))
    assert len(found) == 5 and {a.status.code for a in found} == {"Healthy", "Unhealthy"}
    first = found[0]
    assert first.type == "Microsoft.Security/assessments" and first.id.startswith(VM_WEB + "/providers/")
    assert first.resource_details.source == "Azure" and first.resource_details.id == VM_WEB
    assert first.display_name and first.status.description == "SSH (22) and RDP (3389) are open to the internet"


def test_a_subscriptions_assessments_hold_every_resource(security: SecurityCenter) -> None:
    resources = {a.resource_details.id for a in security.assessments.list(SUB.lstrip("/"))}
    assert resources == {VM_WEB, STORAGE}


def test_the_recommendations_metadata(security: SecurityCenter) -> None:
    found = {m.name: m for m in security.assessments_metadata.list()}
    assert len(found) == 7 and {m.severity for m in found.values()} == {"High", "Medium", "Low"}
    one = next(iter(found.values()))
    assert one.assessment_type == "BuiltIn" and one.categories and one.remediation_description
    assert security.assessments_metadata.get(one.name).display_name == one.display_name


def test_the_secure_score_is_the_sum_of_its_controls(security: SecurityCenter) -> None:
    score = security.secure_scores.get("ascScore")
    assert (score.current, score.max) == (19.5, 30) and score.percentage == pytest.approx(0.65)
    assert [s.name for s in security.secure_scores.list()] == ["ascScore"]
    controls = list(security.secure_score_controls.list_by_secure_score("ascScore", expand="definition"))
    assert sum(c.current for c in controls) == pytest.approx(score.current) and sum(c.max for c in controls) == 30
    ports = next(c for c in controls if c.display_name == "Secure management ports")
    assert (ports.unhealthy_resource_count, ports.healthy_resource_count) == (2, 2)
    assert ports.definition.max_score == 8 and len(ports.definition.assessment_definitions) == 2
    plain = list(security.secure_score_controls.list())
    assert len(plain) == len(controls) and plain[0].definition is None


def test_missing_things_are_404s(security: SecurityCenter) -> None:
    with pytest.raises(ResourceNotFoundError):
        list(security.assessments.list(VM_WEB.replace("vm-web-01", "vm-gone").lstrip("/")))
    with pytest.raises(ResourceNotFoundError):
        security.secure_scores.get("otherScore")
