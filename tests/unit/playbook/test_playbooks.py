"""Every bundled playbook validates; broken ones are refused with every problem named."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.engine.planner import plan_steps
from shared.intake import normalise
from shared.playbook.conditions import ConditionError, evaluate, is_true
from shared.playbook.loader import PLAYBOOKS_DIR, PlaybookError, load_playbooks, parse_playbook
from shared.playbook.matching import entities_of, matching, why_not
from tests.unit.intake.cases import sample

BUNDLED = sorted(PLAYBOOKS_DIR.glob("*.yaml"))


def test_there_are_bundled_playbooks() -> None:
    assert {p.stem for p in BUNDLED} >= {"compromised-account", "compromised-vm", "malicious-ip", "defender-alert"}


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_every_bundled_playbook_validates(path: Path) -> None:
    playbook = parse_playbook(path.read_text(encoding="utf-8"), path.name)
    assert playbook.name == path.stem
    assert playbook.actions, "a playbook that does nothing is not worth shipping"


def test_test_and_bench_playbooks_validate() -> None:
    root = Path(__file__).resolve().parents[3]
    assert set(load_playbooks(root / "tests/fixtures/playbooks")) == {"contain-account"}
    assert set(load_playbooks(root / "bench/playbooks")) == {"burst-account"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: Bad Name\n", "name"),
        ("name: ok-name\nactions: [{id: a, uses: nope.missing_action}]\n", "no action named 'nope.missing_action'"),
        ("name: ok-name\nactions: [{id: a, uses: entra.get_user}]\n", "is a enrich action, not respond"),
        ("name: ok-name\nactions: [{id: a, uses: entra.disable_user, with: {wrong: entity.x}}]\n", "no parameter"),
        ("name: ok-name\nactions: [{id: a, uses: entra.disable_user, when: '1 +'}]\n", "cannot parse"),
        ("name: ok-name\nactions: [{id: a, uses: entra.disable_user, needs: [b]}]\n", "needs unknown step b"),
        (
            "name: ok-name\nactions: [{id: a, uses: entra.disable_user, needs: [b]}, "
            "{id: b, uses: entra.enable_user, needs: [a]}]\n",
            "cycle",
        ),
        ("name: ok-name\nactions: [{id: a, uses: entra.disable_user, timeout: soon}]\n", "not a duration"),
        ("name: ok-name\nactions: [{id: a, uses: entra.disable_user, timeout: \u0663m}]\n", "not a duration"),
        ("name: ok-name\nactions: [{id: a, uses: entra.disable_user, for_each: Robot}]\n", "for_each must be one of"),
        ("name: ok-name\nmatch: {title: '(unclosed'}\nactions: [{id: a, uses: entra.disable_user}]\n", "title"),
        ("name: ok-name\nsurprise: true\n", "surprise"),
        ("name: [unclosed\n", "not valid YAML"),
    ],
)
def test_broken_playbooks_are_refused_with_the_problem(text: str, expected: str) -> None:
    with pytest.raises(PlaybookError) as caught:
        parse_playbook(text, "broken.yaml")
    assert expected in str(caught.value)


def test_cel_conditions_are_safe() -> None:
    assert is_true('incident.severity == "High"', {"incident": {"severity": "High"}})
    assert evaluate("findings.risk.riskLevel", {"findings": {"risk": {"riskLevel": "high"}}}) == "high"
    with pytest.raises(ConditionError):
        is_true("findings.missing.x == 1", {"findings": {}})
    with pytest.raises(ConditionError):
        is_true("42", {})  # not a boolean
    with pytest.raises(ConditionError):
        is_true("__import__('os')", {})  # no eval: not even parseable


def test_matching_routes_each_sample_to_its_playbook() -> None:
    playbooks = load_playbooks()
    account = normalise(sample("sentinel-incident-compromised-account.json"), max_entities=500).summary()
    vm = normalise(sample("sentinel-incident-compromised-vm.json"), max_entities=500).summary()
    device = normalise(sample("sentinel-incident-compromised-device.json"), max_entities=500).summary()
    app = normalise(sample("sentinel-incident-compromised-app.json"), max_entities=500).summary()
    ip = normalise(sample("sentinel-incident-malicious-ip-arm.json"), max_entities=500).summary()
    defender = normalise(sample("defender-alert-eventgrid.json")[0]["data"], max_entities=500).summary()
    storage = normalise(sample("defender-storage-alert-eventgrid.json")[0]["data"], max_entities=500).summary()
    assert [p.name for p in matching(playbooks, account)] == ["compromised-account"]
    assert [p.name for p in matching(playbooks, vm)] == ["compromised-vm"]
    assert [p.name for p in matching(playbooks, device)] == ["compromised-device"]
    assert [p.name for p in matching(playbooks, app)] == ["compromised-app"]
    assert [p.name for p in matching(playbooks, ip)] == ["malicious-ip"]
    assert [p.name for p in matching(playbooks, defender)] == ["defender-alert"]
    assert [p.name for p in matching(playbooks, storage)] == ["storage-anomaly"]
    assert why_not(playbooks["compromised-vm"], account) == "no entity of kind VirtualMachine"
    # a VM named twice (Host.azureID and AzureResource.resourceId, different casing) is one VM
    assert len(entities_of(vm, "VirtualMachine")) == 1


def test_planner_expands_per_entity_with_dependencies() -> None:
    playbook = load_playbooks()["compromised-account"]
    incident = normalise(sample("sentinel-incident-compromised-account.json"), max_entities=500).summary()
    incident["entities"].append(dict(incident["entities"][0], id="second", aadUserId="other"))
    steps = {s.id: s for s in plan_steps(playbook, incident)}
    assert {"profile.0", "profile.1", "disable.0", "disable.1", "writeback"} <= set(steps)
    assert steps["signins.1"].needs == ["profile.1"]  # same kind: the same entity's instance
    assert steps["revoke.0"].needs[-1] == "disable.0"
    assert set(steps["writeback"].needs) == set(steps) - {"writeback"}
