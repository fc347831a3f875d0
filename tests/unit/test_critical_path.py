"""The critical path the benches judge a run against: computed from the playbook's dependency graph and the calls each
action must make, so a slow step cannot lengthen the yardstick it is measured with."""

from __future__ import annotations

from pathlib import Path

from shared.actions import registry
from shared.engine.planner import plan_steps
from shared.playbook.loader import load_playbooks
from tools.critical_path import CALLS, critical_path, observed_rounds, uncovered_s

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = {"kind": "Account", "aadUserId": "7b000000-0000-4000-8000-000000000001"}


def steps_of(name: str, directory: Path, entities: int = 1) -> list[dict[str, object]]:
    playbook = load_playbooks(directory)[name]
    incident = {"entities": [dict(ACCOUNT, aadUserId=f"7b000000-0000-4000-8000-{n:012d}") for n in range(entities)]}
    return [s.model_dump(mode="json") for s in plan_steps(playbook, incident)]


def test_declared_actions_exist() -> None:
    assert set(CALLS) <= set(registry.catalogue())


def test_compromised_account_needs_six_rounds() -> None:
    # profile -> sign-ins; disable's PATCH; revoke and confirm together; the write-back's read, then its two writes
    rounds, chain, weights = critical_path(steps_of("compromised-account", ROOT / "playbooks"))
    assert rounds == 6
    assert chain[0] == "profile.0" and chain[-1] == "writeback"
    assert weights["disable.0"] == 1  # the user and memberships profile read are held
    assert weights["revoke.0"] == 1 and weights["confirm.0"] == 1


def test_a_read_again_under_a_lock_counts() -> None:
    steps = [
        {"id": "profile.0", "uses": "entra.get_user", "needs": []},
        {"id": "block_ip.0", "uses": "entra.block_ip_in_named_location", "needs": ["profile.0"]},
    ]
    assert critical_path(steps)[0] == 4


def test_more_entities_run_side_by_side() -> None:
    assert critical_path(steps_of("compromised-account", ROOT / "playbooks", entities=3))[0] == 6


def test_a_read_nobody_made_before_counts() -> None:
    steps = [{"id": "disable.0", "uses": "entra.disable_user", "needs": []}]
    assert critical_path(steps)[0] == 2
    other_entity = [
        {"id": "profile.1", "uses": "entra.get_user", "needs": []},
        {"id": "disable.0", "uses": "entra.disable_user", "needs": ["profile.1"]},
    ]
    assert critical_path(other_entity)[2]["disable.0"] == 2


def test_observed_rounds_and_time_outside_calls() -> None:
    calls = [(0.0, 0.05), (0.01, 0.06), (0.07, 0.12), (0.12, 0.17)]
    assert observed_rounds(calls) == 3
    assert abs(uncovered_s(calls, 0.0, 0.2) - 0.04) < 1e-9
