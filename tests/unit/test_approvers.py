"""Separation of duties and approver groups (shared/approvers.py), the playbook's `approvers` schema, and the quorum
counting identities by object id. The HTTP path (tokens, Graph, the store) is in tests/e2e/test_auth_matrix.py."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from shared.approvers import ApprovalRefused, ApproverGroups, check_separation
from shared.engine.model import ApprovalState, Decision, Run
from shared.playbook.loader import parse_playbook

SOC = "5e0a7c3d-2b1f-4a6e-9c8d-7f6e5d4c3b02"
LEADS = "5E0A7C3D-2B1F-4A6E-9C8D-7F6E5D4C3B99"
JOHANNA = "1c9f2b8e-4a3d-4e6f-8b1c-2d3e4f5a6b12"
IRVIN = "1c9f2b8e-4a3d-4e6f-8b1c-2d3e4f5a6b11"

PLAYBOOK = f"""
name: gated
approvers: {{group: {SOC}}}
actions:
  - id: disable
    uses: entra.disable_user
    requires_approval: true
    with: {{aad_user_id: '"{JOHANNA}"'}}
  - id: revoke
    uses: entra.revoke_sessions
    requires_approval: {{quorum: 2, approvers: {{groups: [{LEADS}, {SOC}]}}}}
    with: {{aad_user_id: '"{JOHANNA}"'}}
"""


def test_a_playbook_names_its_approver_group_and_a_step_can_name_its_own() -> None:
    playbook = parse_playbook(PLAYBOOK, "gated.yaml")
    disable, revoke = playbook.actions
    assert playbook.approver_groups(disable) == (SOC,)
    assert playbook.approver_groups(revoke) == (LEADS.lower(), SOC)  # the step's own list wins, ids in one case


@pytest.mark.parametrize(
    ("approvers", "says"),
    [
        ("{group: soc-analysts}", "not a group object id"),
        ("{groups: []}", "at least 1"),
        (f"{{group: {SOC}, groups: [{SOC}]}}", "group or groups, not both"),
        (f"{{group: {SOC}, role: admin}}", "Extra inputs"),
    ],
)
def test_bad_approvers_are_refused_naming_the_problem(approvers: str, says: str) -> None:
    with pytest.raises(Exception, match=says):
        parse_playbook(PLAYBOOK.replace(f"approvers: {{group: {SOC}}}", f"approvers: {approvers}"), "gated.yaml")


def test_the_quorum_counts_object_ids_not_names() -> None:
    state = ApprovalState(quorum=2, deadline=0)
    # one person, two tokens whose names differ (a v1 token's upn, a v2 token's preferred_username)
    state.decisions.append(Decision(by="Johanna (x)", decision="approve", at=1, object_id=JOHANNA))
    state.decisions.append(Decision(by="johanna.lorenz@contoso.com (x)", decision="approve", at=2, object_id=JOHANNA))
    assert state.approvers() == {JOHANNA}
    state.decisions.append(Decision(by="Irvin", decision="approve", at=3, object_id=IRVIN))
    assert len(state.approvers()) == 2


def _run(**fields: str) -> Run:
    return Run(id="r", playbook="gated", incident={}, created_at=0, updated_at=0, **fields)


def test_whoever_started_the_run_or_its_rollback_cannot_approve_it() -> None:
    started = _run(requested_by="Johanna", requested_by_id=JOHANNA)
    with pytest.raises(ApprovalRefused) as refused:
        check_separation(started, "approve", JOHANNA.upper())
    assert refused.value.code == "SelfApproval"
    check_separation(started, "reject", JOHANNA)  # withdrawing one's own request stays open
    check_separation(started, "approve", IRVIN)
    rolled = _run(requested_by="function-key", rollback_requested_by_id=IRVIN)
    with pytest.raises(ApprovalRefused, match="Separation of duties"):
        check_separation(rolled, "approve", IRVIN)
    check_separation(_run(requested_by="function-key"), "approve", "")  # a machine's run: nobody to exclude


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_approver_groups_are_read_once_per_ttl_and_a_failure_is_not_cached() -> None:
    calls: list[str] = []
    memberships = {JOHANNA: {SOC.upper()}}
    fail = {"next": False}

    async def lookup(object_id: str) -> set[str]:
        calls.append(object_id)
        if fail["next"]:
            fail["next"] = False
            raise RuntimeError("graph down")
        return memberships.get(object_id, set())

    clock = Clock()
    groups = ApproverGroups(lookup, ttl_s=60, clock=clock)
    state = ApprovalState(deadline=0, approver_groups=[SOC])

    async def scenario() -> None:
        await asyncio.gather(*(groups.check(state, JOHANNA) for _ in range(5)))
        assert calls == [JOHANNA]  # five concurrent decisions, one Graph call
        with pytest.raises(ApprovalRefused) as refused:
            await groups.check(state, IRVIN)
        assert refused.value.code == "NotInApproverGroup" and SOC in refused.value.message
        with pytest.raises(ApprovalRefused) as refused:
            await groups.check(state, "")
        assert refused.value.code == "ApproverIdentityRequired"
        await groups.check(ApprovalState(deadline=0), "")  # no group named: anyone with the role decides

        memberships[JOHANNA] = set()  # removed from the group: effective once the cache entry expires
        await groups.check(state, JOHANNA)
        clock.now = 61
        fail["next"] = True
        with pytest.raises(RuntimeError):
            await groups.check(state, JOHANNA)
        with pytest.raises(ApprovalRefused):
            await groups.check(state, JOHANNA)
        assert calls == [JOHANNA, IRVIN, JOHANNA, JOHANNA]

    asyncio.run(scenario())


def test_a_decision_recorded_before_object_ids_still_loads() -> None:
    decision = Decision.model_validate({"by": "Someone (oid)", "decision": "approve", "at": 1})
    assert decision.object_id == "" and decision.decider == "someone (oid)"
    with pytest.raises(ValidationError):
        Decision.model_validate({"decision": "approve", "at": 1})


def test_the_catalogue_names_each_steps_approver_groups_and_what_checking_them_needs() -> None:
    from shared.api.runs_routes import approvers_of

    listed = approvers_of(parse_playbook(PLAYBOOK, "gated.yaml"))
    assert listed["groups"] == {"disable": [SOC], "revoke": [LEADS.lower(), SOC]}
    assert {p["name"] for p in listed["permissions"]} == {"User.Read.All", "GroupMember.Read.All"}
    assert approvers_of(parse_playbook(PLAYBOOK.replace(f"approvers: {{group: {SOC}}}\n", ""), "open.yaml")) == {
        "groups": {"revoke": [LEADS.lower(), SOC]},
        "permissions": listed["permissions"],
    }


def test_the_graph_grants_cover_the_approver_group_check() -> None:
    import json

    from shared.approvers import GRAPH_PERMISSIONS, USED_BY
    from tools import gen_permissions

    grants = json.loads(gen_permissions.GRAPH_GRANTS.read_text())["grants"]
    for permission in GRAPH_PERMISSIONS:
        [grant] = [g for g in grants if g["permission"] == permission.name]
        assert USED_BY in grant["usedBy"]
