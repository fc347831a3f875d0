"""The playbook schema. A playbook says when it applies, what to look up, what to do, what needs approval, and what
to write back. Conditions and parameter values are CEL expressions evaluated by shared.playbook.conditions.

    name: compromised-account
    match: {entity_kinds: [Account], severities: [High, Medium]}
    enrich:
      - {id: profile, uses: entra.get_user, for_each: Account, with: {aad_user_id: entity.aad_user_id}}
    actions:
      - id: disable
        uses: entra.disable_user
        for_each: Account
        when: findings.risk.risk_level == "high"
        requires_approval: findings.profile.is_privileged
        with: {aad_user_id: entity.aad_user_id}
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

STEP_ID = re.compile(r"^[a-z][a-z0-9_]{0,39}\Z")
OBJECT_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
MAX_APPROVER_GROUPS = 20
DURATION = re.compile(r"^([0-9]+)(s|m|h|d)\Z")  # [0-9]: \d takes any script's digits
ENTITY_KINDS = (
    "Account", "Host", "Ip", "AzureResource", "File", "FileHash", "Url", "DnsResolution", "Process", "MailMessage",
    "Mailbox", "CloudApplication", "SecurityGroup", "RegistryKey", "RegistryValue", "Malware", "IoTDevice",
)  # fmt: skip
# for_each also accepts VirtualMachine: every distinct VM named by a Host.azureID or an AzureResource VM id.
ITERABLES = (*ENTITY_KINDS, "VirtualMachine")


def duration_seconds(text: str) -> int:
    match = DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration such as 30s, 10m, 2h or 1d")
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


def _duration(text: str) -> str:
    duration_seconds(text)
    return text


Duration = Annotated[str, AfterValidator(_duration)]


Scalar = str | int | float | bool
# A parameter's value: a CEL expression (a string), a literal, or one level of map whose values are either
# (loganalytics.run_query's `parameters`).
WithValue = Scalar | dict[str, Scalar]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Match(_Strict):
    sources: tuple[Literal["sentinel", "defender"], ...] = ()
    severities: tuple[Literal["High", "Medium", "Low", "Informational"], ...] = ()
    title: str | None = Field(None, description="A regular expression the title must match (case-insensitive)")
    analytic_rule_ids: tuple[str, ...] = ()
    tactics: tuple[str, ...] = ()
    entity_kinds: tuple[str, ...] = Field((), description="The incident must carry at least one entity of one of these")
    condition: str | None = Field(None, description="A CEL condition over `incident`")

    @field_validator("title")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return value

    @field_validator("entity_kinds")
    @classmethod
    def _kinds(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for kind in value:
            if kind not in ITERABLES:
                raise ValueError(f"unknown entity kind {kind!r}; one of {', '.join(ITERABLES)}")
        return value


class _Step(_Strict):
    id: str
    uses: str = Field(description="The action's registry name, e.g. entra.get_user")
    for_each: str | None = Field(None, description="Run once per entity of this kind (or VirtualMachine)")
    with_: dict[str, WithValue] = Field(default_factory=dict, alias="with")
    needs: tuple[str, ...] = ()
    when: str | None = Field(None, description="A CEL condition; the step is skipped (with the reason) when false")
    timeout: Duration = "5m"

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not STEP_ID.match(value):
            raise ValueError("a step id is lower_snake_case, starting with a letter, at most 40 characters")
        return value

    @field_validator("for_each")
    @classmethod
    def _for_each(cls, value: str | None) -> str | None:
        if value is not None and value not in ITERABLES:
            raise ValueError(f"for_each must be one of {', '.join(ITERABLES)}")
        return value


class EnrichStep(_Step):
    pass


class Approvers(_Strict):
    """Who may decide (approve or reject) a gated step, besides holding the Riposte.Approve app role: members of any
    of these Entra groups, nested membership included, checked through Microsoft Graph at decision time.

    `group: <object id>` is shorthand for `groups: [<object id>]`."""

    groups: tuple[str, ...] = Field(min_length=1, max_length=MAX_APPROVER_GROUPS)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: object) -> object:
        if isinstance(value, dict) and "group" in value:
            if "groups" in value:
                raise ValueError("give group or groups, not both")
            rest = {k: v for k, v in value.items() if k != "group"}
            return {**rest, "groups": [value["group"]]}
        return value

    @field_validator("groups")
    @classmethod
    def _object_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for group in value:
            if not OBJECT_ID.match(group):
                raise ValueError(f"{group!r} is not a group object id (GUID)")
        return tuple(dict.fromkeys(g.lower() for g in value))


class Approval(_Strict):
    when: str = Field("true", description="A CEL condition: approval is needed when it is true")
    quorum: int = Field(1, ge=1, le=5, description="How many distinct approvers (Entra object ids) must approve")
    timeout: Duration = "4h"
    on_timeout: Literal["reject", "approve"] = "reject"
    approvers: Approvers | None = Field(None, description="Who may decide this step; default: the playbook's")


class WaitUntil(_Strict):
    """After the action: poll an enricher until a CEL condition over its result holds (packet capture finished)."""

    uses: str
    with_: dict[str, WithValue] = Field(default_factory=dict, alias="with")
    until: str
    every: Duration = "30s"
    timeout: Duration = "2h"


class ActionStep(_Step):
    requires_approval: bool | str | Approval = False
    wait_until: WaitUntil | None = None
    then_comment: str | None = Field(None, description="A CEL string expression posted as a comment after the wait")

    @property
    def approval(self) -> Approval | None:
        if self.requires_approval is False:
            return None
        if self.requires_approval is True:
            return Approval(when="true", quorum=1)
        if isinstance(self.requires_approval, str):
            return Approval(when=self.requires_approval, quorum=1)
        return self.requires_approval


class WriteBack(_Strict):
    comment: bool = True
    labels: tuple[str, ...] = ()
    status: Literal["New", "Active", "Closed"] | None = None
    severity: Literal["High", "Medium", "Low", "Informational"] | None = None
    when: str | None = Field(None, description="A CEL condition for the status/severity change")


class ScoreRule(_Strict):
    """Points the risk score gets for each instance of an enrichment whose finding makes `when` true."""

    finding: str = Field(description="The id of the enrichment step whose findings the rule reads")
    when: str = Field(description="A CEL condition over `finding` (this instance's data), `entity` and `incident`")
    points: int = Field(ge=-100, le=100)
    reason: str = Field(min_length=1, max_length=200, description="Why the points, as the incident comment shows it")


class Playbook(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]{1,62}$")
    description: str = ""
    version: int = 1
    match: Match = Field(default_factory=lambda: Match())
    enrich: tuple[EnrichStep, ...] = ()
    actions: tuple[ActionStep, ...] = ()
    writeback: WriteBack = Field(default_factory=lambda: WriteBack())
    approvers: Approvers | None = Field(None, description="Who may decide every gated step that names no approvers")
    score: tuple[ScoreRule, ...] = Field((), description="The risk score's rules; CEL reads the result as `score`")

    def approver_groups(self, step: ActionStep) -> tuple[str, ...]:
        """The groups whose members may decide `step`'s approval; () when any Riposte.Approve holder may."""
        approval = step.approval
        chosen = (approval.approvers if approval else None) or self.approvers
        return chosen.groups if chosen else ()

    @model_validator(mode="after")
    def _graph(self) -> Playbook:
        ids = [s.id for s in (*self.enrich, *self.actions)]
        duplicates = {i for i in ids if ids.count(i) > 1}
        if duplicates:
            raise ValueError(f"step ids must be unique: {', '.join(sorted(duplicates))}")
        known = set(ids)
        for step in (*self.enrich, *self.actions):
            for need in step.needs:
                if need not in known:
                    raise ValueError(f"step {step.id} needs unknown step {need}")
        enrich_ids = {s.id for s in self.enrich}
        for step in self.enrich:
            if set(step.needs) - enrich_ids:
                raise ValueError(f"enrichment {step.id} can only need other enrichments")
        _check_acyclic({s.id: s.needs for s in (*self.enrich, *self.actions)})
        for rule in self.score:
            if rule.finding not in enrich_ids:
                raise ValueError(f"score rule for {rule.finding!r}: no enrichment step has that id")
        return self


def _check_acyclic(edges: dict[str, tuple[str, ...]]) -> None:
    state: dict[str, int] = {}

    def visit(node: str, path: tuple[str, ...]) -> None:
        if state.get(node) == 2:
            return
        if state.get(node) == 1:
            raise ValueError(f"steps depend on each other in a cycle: {' -> '.join((*path, node))}")
        state[node] = 1
        for need in edges.get(node, ()):
            visit(need, (*path, node))
        state[node] = 2

    for node in edges:
        visit(node, ())
