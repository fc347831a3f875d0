"""Microsoft Sentinel: the incident's context (enricher), comments a retry never duplicates, and incident updates that
can be undone.

An incident is named by its ARM id, from the parameters or from the run (ActionContext.incident_id).

Comments: the comment id is a GUID derived from the incident and the idempotency key, so a retry PUTs the same comment
again instead of adding a second one (and skips the PUT when the comment is already there as intended). Text is always
HTML-escaped. Markup (the write-back summary's tables) can only come as a SafeHtml, which is built in-process by
constructors that escape every string they are given; no parameter turns a string into markup. A message longer than
Sentinel's 30,000 characters is cut between elements, with a note saying so: a comment is never refused for length.

Updates: severity, status, owner, labels (added, never dropped), classification with its reason and comment when
closing. The PUT carries the etag the plan read; when the incident changed meanwhile (412) the change is applied again
to what is there now. Undo puts back the recorded value of each field the update changed, unless someone has changed
that field again since (it is then left alone and reported), and removes only the labels the update added."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)
from pydantic.alias_generators import to_camel

from shared.actions.context import ActionContext
from shared.actions.executor import ActionError
from shared.actions.model import Outcome, Plan, Target, azure_role
from shared.actions.registry import enricher, responder
from shared.azure.errors import NotFound
from shared.azure.sentinel import CLASSIFICATION_FIELDS, IncidentRef, merge_incident, same_incident, writable
from shared.safehtml import CONTROL_CHARACTERS, MAX_COMMENT_CHARS, SafeHtml

SENTINEL_READER = (azure_role("Microsoft Sentinel Reader", "Microsoft.SecurityInsights/incidents/read"),)
COMMENT_WRITER = (azure_role("Microsoft Sentinel Responder", "Microsoft.SecurityInsights/incidents/comments/write"),)
INCIDENT_WRITER = (azure_role("Microsoft Sentinel Responder", "Microsoft.SecurityInsights/incidents/write"),)

# Fixed forever: a comment id computed by one release must be the same in the next, or a retry across an upgrade
# would add a second comment.
COMMENT_NAMESPACE = uuid.UUID("6c0b8f0e-52d1-4f6a-9a57-3e0c6f1d2b84")

Severity = Literal["High", "Medium", "Low", "Informational"]
IncidentStatus = Literal["New", "Active", "Closed"]
Classification = Literal["Undetermined", "TruePositive", "BenignPositive", "FalsePositive"]
ClassificationReason = Literal["SuspiciousActivity", "SuspiciousButExpected", "IncorrectAlertLogic", "InaccurateData"]
# The reasons Sentinel takes with each classification (Undetermined takes none).
REASONS: dict[str, frozenset[str]] = {
    "Undetermined": frozenset(),
    "TruePositive": frozenset({"SuspiciousActivity"}),
    "BenignPositive": frozenset({"SuspiciousButExpected"}),
    "FalsePositive": frozenset({"IncorrectAlertLogic", "InaccurateData"}),
}


def _incident_id(value: str | None) -> str | None:
    return None if value is None else IncidentRef.parse(value).id


def _object_id(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError("must be an Entra object id (a GUID)") from None


def _label(value: str) -> str:
    text = value.strip()
    if not text or len(text) > 256 or CONTROL_CHARACTERS.search(text) or "\n" in text or "\r" in text:
        raise ValueError("a label is 1 to 256 characters on one line")
    return text


IncidentId = Annotated[str | None, AfterValidator(_incident_id)]
ObjectId = Annotated[str | None, AfterValidator(_object_id)]
Label = Annotated[str, AfterValidator(_label)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, alias_generator=to_camel, validate_by_name=True)


class _IncidentParams(_Model):
    incident_id: IncidentId = Field(None, description="Incident ARM id; the run's incident when omitted")


def incident_ref(ctx: ActionContext, incident_id: str | None) -> IncidentRef:
    arm_id = incident_id or ctx.incident_id
    if not arm_id:
        raise ActionError("no incident: pass incidentId or run the playbook for a Sentinel incident")
    try:
        return IncidentRef.parse(arm_id)
    except ValueError as error:
        raise ActionError(f"incident id {arm_id!r}: {error}") from None


async def read_incident(ctx: ActionContext, ref: IncidentRef) -> dict[str, Any]:
    try:
        incident: dict[str, Any] = await ctx.azure.sentinel.get_incident(ref.id)
    except NotFound:
        raise ActionError(f"incident {ref.name} not found in workspace {ref.workspace}") from None
    return incident


def incident_target(incident: dict[str, Any]) -> Target:
    props = incident.get("properties") or {}
    number = props.get("incidentNumber")
    title = str(props.get("title") or incident.get("name") or "")
    return Target(kind="incident", id=str(incident["id"]), display=f"#{number} {title}" if number else title)


# ---------------------------------------------------------------------------------------------------------------------
# enricher: the incident, its entities and its alerts


class IncidentContextParams(_IncidentParams):
    pass


class IncidentOwner(_Model):
    object_id: str | None = None
    user_principal_name: str | None = None
    assigned_to: str | None = None
    email: str | None = None


class IncidentContext(_Model):
    id: str
    name: str
    etag: str | None
    number: int | None
    title: str
    description: str | None
    severity: str
    status: str
    classification: str | None
    classification_reason: str | None
    owner: IncidentOwner | None
    labels: list[str]
    url: str | None
    provider_name: str | None
    created_time_utc: str | None
    first_activity_time_utc: str | None
    last_activity_time_utc: str | None
    related_analytic_rule_ids: list[str]
    tactics: list[str]
    techniques: list[str]
    entities: list[dict[str, Any]] = Field(description="As POST .../entities returns them (kind, properties)")
    entity_counts: dict[str, int]
    alerts: list[dict[str, Any]] = Field(description="The SecurityAlert entities of POST .../alerts")


@enricher(
    "sentinel.get_incident",
    summary="The incident from the Sentinel API with its entities and alerts (for payloads that lack them)",
    params=IncidentContextParams,
    permissions=SENTINEL_READER,
    target="Incident",
)
async def get_incident(ctx: ActionContext, params: IncidentContextParams) -> IncidentContext:
    ref = incident_ref(ctx, params.incident_id)
    incident, entities, alerts = await asyncio.gather(
        read_incident(ctx, ref), ctx.azure.sentinel.list_entities(ref.id), ctx.azure.sentinel.list_alerts(ref.id)
    )
    props = incident.get("properties") or {}
    owner = props.get("owner") or {}
    extra = props.get("additionalData") or {}
    found: list[dict[str, Any]] = entities.get("entities") or []
    counts = {str(m["entityKind"]): int(m["count"]) for m in entities.get("metaData") or [] if "entityKind" in m}
    return IncidentContext(
        id=str(incident["id"]),
        name=str(incident.get("name") or ref.name),
        etag=incident.get("etag"),
        number=props.get("incidentNumber"),
        title=str(props.get("title") or ""),
        description=props.get("description"),
        severity=str(props.get("severity") or ""),
        status=str(props.get("status") or ""),
        classification=props.get("classification"),
        classification_reason=props.get("classificationReason"),
        owner=IncidentOwner.model_validate(owner) if owner.get("objectId") else None,
        labels=[str(label.get("labelName")) for label in props.get("labels") or [] if label.get("labelName")],
        url=props.get("incidentUrl"),
        provider_name=props.get("providerName"),
        created_time_utc=props.get("createdTimeUtc"),
        first_activity_time_utc=props.get("firstActivityTimeUtc"),
        last_activity_time_utc=props.get("lastActivityTimeUtc"),
        related_analytic_rule_ids=list(props.get("relatedAnalyticRuleIds") or []),
        tactics=list(extra.get("tactics") or []),
        techniques=list(extra.get("techniques") or []),
        entities=found,
        entity_counts=counts,
        alerts=alerts,
    )


def comment_id_for(incident_arm_id: str, key: str) -> str:
    """The comment's id: the same incident and idempotency key give the same GUID, in any process, any release."""
    return str(uuid.uuid5(COMMENT_NAMESPACE, f"{IncidentRef.parse(incident_arm_id).id.lower()}\n{key}"))


# ---------------------------------------------------------------------------------------------------------------------
# responder: add a comment


class AddCommentParams(_IncidentParams):
    text: str = Field("", description="Plain text, HTML-escaped; line breaks are kept")
    html: SafeHtml | None = Field(None, description="In-process only: markup built with SafeHtml, after the text")

    @model_validator(mode="after")
    def _has_content(self) -> AddCommentParams:
        if not self.text.strip() and (self.html is None or not str(self.html).strip()):
            raise ValueError("a comment needs text or html")
        return self


def compose_comment(params: AddCommentParams) -> tuple[str, int]:
    content = SafeHtml.text(params.text) if params.text.strip() else SafeHtml()
    if params.html is not None:
        content = content + params.html
    return content.render(MAX_COMMENT_CHARS)


@responder(
    "sentinel.add_comment",
    summary="Adds a comment to the incident (HTML-escaped, within 30,000 characters); a retry never duplicates it",
    params=AddCommentParams,
    permissions=COMMENT_WRITER,
    target="Incident",
    reversible=False,
    destructive=False,
    undo_hint="Delete the comment from the incident in the Sentinel portal; its id is in the result",
)
class AddComment:
    async def plan(self, ctx: ActionContext, params: AddCommentParams) -> Plan:
        ref = incident_ref(ctx, params.incident_id)
        incident = await read_incident(ctx, ref)
        message, omitted = compose_comment(params)
        intended = {
            "incidentId": ref.id,
            "message": message,
            "characters": len(message),
            "truncatedCharacters": omitted,
            "sha256": hashlib.sha256(message.encode()).hexdigest(),
        }
        cut = f", {omitted:,} characters cut to fit the limit" if omitted else ""
        reason = f"a {len(message):,}-character comment{cut}"
        return Plan(target=incident_target(incident), intended=intended, noop=False, reason=reason)

    async def apply(self, ctx: ActionContext, plan: Plan, key: str) -> dict[str, Any]:
        incident_id, message = str(plan.intended["incidentId"]), str(plan.intended["message"])
        comment_id = comment_id_for(incident_id, key)
        # Only a replay can find the comment there already (the id comes from the key): a first attempt just PUTs.
        existing = await ctx.azure.sentinel.get_comment(incident_id, comment_id) if plan.replay else None
        if existing is not None and (existing.get("properties") or {}).get("message") == message:
            # Written by an earlier attempt whose outcome was lost: the PUT would change nothing.
            return {"commentId": comment_id, "id": existing.get("id"), "written": False}
        comment = await ctx.azure.sentinel.create_or_update_comment(incident_id, comment_id, message)
        return {"commentId": comment_id, "id": comment.get("id"), "written": True, "replaced": existing is not None}

    async def undo(self, ctx: ActionContext, outcome: Outcome) -> dict[str, Any]:
        raise ActionError("sentinel.add_comment is not reversible")


# ---------------------------------------------------------------------------------------------------------------------
# responder: update the incident


class UpdateIncidentParams(_IncidentParams):
    severity: Severity | None = None
    status: IncidentStatus | None = None
    owner_object_id: ObjectId = Field(None, description="Assign to this Entra user (object id)")
    unassign_owner: bool = False
    add_labels: tuple[Label, ...] = Field((), description="Labels to add; existing labels are always kept")
    classification: Classification | None = None
    classification_reason: ClassificationReason | None = None
    classification_comment: str | None = Field(None, max_length=10_000)

    @model_validator(mode="after")
    def _consistent(self) -> UpdateIncidentParams:
        if self.owner_object_id and self.unassign_owner:
            raise ValueError("ownerObjectId and unassignOwner exclude each other")
        if self.status == "Closed" and self.classification is None:
            raise ValueError("closing an incident needs a classification")
        if self.classification_reason and self.classification is None:
            raise ValueError("classificationReason needs a classification")
        if (
            self.classification
            and self.classification_reason
            and self.classification_reason not in REASONS[self.classification]
        ):
            allowed = ", ".join(sorted(REASONS[self.classification])) or "none"
            raise ValueError(f"{self.classification} takes classificationReason {allowed}")
        changes = (self.severity, self.status, self.owner_object_id, self.classification, self.classification_comment)
        if not any(v is not None for v in changes) and not self.unassign_owner and not self.add_labels:
            raise ValueError("nothing to change")
        return self


def incident_changes(params: UpdateIncidentParams) -> dict[str, Any]:
    """The fields to set, by their REST names (owner as {"objectId"}; None unassigns)."""
    changes: dict[str, Any] = {}
    if params.severity:
        changes["severity"] = params.severity
    if params.status:
        changes["status"] = params.status
    if params.owner_object_id:
        changes["owner"] = {"objectId": params.owner_object_id}
    elif params.unassign_owner:
        changes["owner"] = None
    if params.classification:
        changes["classification"] = params.classification
        changes["classificationReason"] = params.classification_reason
        changes["classificationComment"] = params.classification_comment
    elif params.classification_comment is not None:
        changes["classificationComment"] = params.classification_comment
    return changes


def _unique(labels: Iterable[str]) -> list[str]:
    """Labels in order, without repeats (label names compare case-insensitively)."""
    seen: set[str] = set()
    unique: list[str] = []
    for label in labels:
        if label.lower() not in seen:
            seen.add(label.lower())
            unique.append(label)
    return unique


def _same_value(field: str, left: Any, right: Any) -> bool:
    if field == "owner":

        def owner_id(value: Any) -> str | None:
            return str(value.get("objectId")).lower() if isinstance(value, dict) and value.get("objectId") else None

        return owner_id(left) == owner_id(right)
    return (left or None) == (right or None)


@responder(
    "sentinel.update_incident",
    summary="Sets severity, status, owner, labels (added, never dropped) or the classification when closing",
    params=UpdateIncidentParams,
    permissions=INCIDENT_WRITER,
    target="Incident",
    reversible=True,
    destructive=False,
)
class UpdateIncident:
    """`intended` is the change as asked (not its difference from what the plan read), so an outcome recorded after an
    interrupted attempt, planned against the already-changed incident, still tells undo what to put back: undo
    compares it with `prior`, the state recorded before the first attempt."""

    async def plan(self, ctx: ActionContext, params: UpdateIncidentParams) -> Plan:
        ref = incident_ref(ctx, params.incident_id)
        incident = await read_incident(ctx, ref)
        current = writable(incident.get("properties") or {})
        changes = incident_changes(params)
        final_status = changes.get("status", current.get("status"))
        if any(field in changes for field in CLASSIFICATION_FIELDS) and final_status != "Closed":
            raise ActionError("a classification belongs to a closed incident: pass status Closed")
        labels = _unique(params.add_labels)
        noop = same_incident(merge_incident(current, changes, add_labels=labels), current)
        return Plan(
            target=incident_target(incident),
            prior={"etag": incident.get("etag"), "properties": current},
            intended={"incidentId": ref.id, "changes": changes, "addLabels": labels},
            noop=noop,
            reason="the incident already is as asked" if noop else "",
        )

    async def apply(self, ctx: ActionContext, plan: Plan, key: str) -> dict[str, Any]:
        incident_id = str(plan.intended["incidentId"])
        etag = plan.prior.get("etag")
        updated = await ctx.azure.sentinel.update_incident(
            incident_id,
            plan.intended["changes"],
            etag,
            add_labels=plan.intended["addLabels"],
            current={"id": incident_id, "etag": etag, "properties": plan.prior["properties"]},
        )
        return {"etag": updated.get("etag"), "properties": writable(updated.get("properties") or {})}

    async def undo(self, ctx: ActionContext, outcome: Outcome) -> dict[str, Any]:
        incident_id = str(outcome.intended["incidentId"])
        incident = await read_incident(ctx, IncidentRef.parse(incident_id))
        now = writable(incident.get("properties") or {})
        before = outcome.prior.get("properties") or {}
        restore: dict[str, Any] = {}
        kept: list[str] = []
        for field, value in (outcome.intended.get("changes") or {}).items():
            if _same_value(field, before.get(field), value):
                continue  # it already was so: the update did not change it
            if _same_value(field, now.get(field), value):
                restore[field] = before.get(field)
            else:
                kept.append(field)  # changed again by someone else since: theirs is newer than our prior
        had = {str(label.get("labelName", "")).lower() for label in before.get("labels", [])}
        added = [label for label in outcome.intended.get("addLabels") or [] if label.lower() not in had]
        updated = await ctx.azure.sentinel.update_incident(
            incident_id, restore, incident.get("etag"), remove_labels=added, current=incident
        )
        return {
            "restored": sorted(restore),
            "keptChangedSince": sorted(kept),
            "removedLabels": added,
            "etag": updated.get("etag"),
        }
