"""Runs actions with the safety rules enforced in one place, whatever the action:

respond: plan (read the prior state) -> guardrail check -> permission check -> dry run stops here -> the ledger's
intent for this key (a replay reuses the prior state recorded the first time) -> destructive budget and intent written
(at once; a refused budget records the intent SKIPPED) -> apply (the one write) -> outcome written. undo: from the
recorded outcome, reversible actions only.
enrich: with a time limit; a failure becomes a Finding with the error, never an exception."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from shared.actions import registry
from shared.actions.context import ActionContext, watchlist_protection
from shared.actions.model import Finding, Outcome, PermissionCheck, Plan, Status


class ActionError(Exception):
    """A failure an action reports on purpose (target not found, invalid parameters)."""


class NotApplicable(ActionError):
    """The action does not apply in this deployment (a setting it needs is unset): the step is skipped, not failed."""


class Responder(Protocol):
    async def plan(self, ctx: ActionContext, params: Any) -> Plan: ...

    async def apply(self, ctx: ActionContext, plan: Plan, key: str) -> dict[str, Any]: ...

    async def undo(self, ctx: ActionContext, outcome: Outcome) -> dict[str, Any]: ...


class DetectsReplay(Protocol):
    """Optional, for responders whose write leaves no state a plan can compare against (revoking sessions): told
    that an earlier attempt recorded its intent at `intent_at` and then vanished, say whether its write happened."""

    async def applied_since(self, ctx: ActionContext, plan: Plan, intent_at: float) -> bool: ...


def _params(spec: registry.ActionSpec, params: dict[str, Any] | BaseModel) -> BaseModel:
    if isinstance(params, BaseModel):
        return params
    try:
        return spec.params.model_validate(params)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise ActionError(f"{spec.name}: parameter {'.'.join(map(str, error['loc']))}: {error['msg']}") from None


async def _permission_checks(ctx: ActionContext, spec: registry.ActionSpec, plan: Plan) -> tuple[PermissionCheck, ...]:
    if ctx.permissions is None:
        return tuple(PermissionCheck(permission=p, held=None, detail="not checked") for p in spec.permissions)
    return tuple([await ctx.permissions.check(p, plan.target) for p in spec.permissions])


async def respond(
    ctx: ActionContext, name: str, params: dict[str, Any] | BaseModel, *, key: str, preview: bool = False
) -> Outcome:
    """Runs a responder under the safety rules. preview=True stops after the guardrail check, like a dry run, so
    the engine learns that a guardrail protects a target before it asks an analyst to approve acting on it."""
    base: dict[str, Any] = {"action": name, "idempotency_key": key}
    try:
        registered = registry.get(name)
    except KeyError as error:
        return Outcome(**base, status=Status.FAILED, reason=str(error))
    spec = registered.spec
    if spec.kind != "respond":
        return Outcome(**base, status=Status.FAILED, reason=f"{name} is an enricher, not a responder")
    responder: Responder = registered.implementation()
    try:
        validated = _params(spec, params)
        # The ledger and the plan's reads at once: a replay after the write (rare) wastes a read the run's cache
        # mostly holds already, and every first attempt saves a storage round trip.
        previous, plan = await asyncio.gather(ctx.ledger.get(key), responder.plan(ctx, validated))
        if previous and previous.get("state") == "done":
            done = Outcome.model_validate(previous["outcome"])
            return done  # a replay after the write: report the first outcome, write nothing
        replayed = False
        interrupted = previous is not None and previous.get("state") == "intent"
        if interrupted and previous is not None:
            plan, replayed = await _judge_interrupted(ctx, responder, validated, plan, previous)
            # A crash between intent and outcome: the world may already be changed, so the prior state that undo
            # must restore is the one recorded before the first attempt, not the one read now.
            plan = plan.model_copy(update={"prior": Plan.model_validate(previous["plan"]).prior, "replay": True})
        assert ctx.guardrails is not None
        guarded = ctx.guardrails.blocked(plan.target) or await watchlist_protection(ctx, plan.target)
        checks = await _permission_checks(ctx, spec, plan) if ctx.dry_run else ()
        common: dict[str, Any] = dict(
            base, target=plan.target, prior=plan.prior, intended=plan.intended, permissions=checks
        )
        if guarded:
            return Outcome(**common, status=Status.SKIPPED, reason=f"guardrail: {guarded}")
        if ctx.dry_run or preview:
            reason = plan.reason or ("already in the intended state" if plan.noop else "would change")
            return Outcome(**common, status=Status.DRY_RUN, reason=reason)
        if (plan.noop or replayed) and interrupted:
            # Our own earlier attempt made the write, then died before recording it: it is DONE (and undoable, with
            # the prior state recorded before that attempt), not merely "already so".
            reason = "completed by an earlier attempt that was interrupted before recording it"
            outcome = Outcome(**common, status=Status.DONE, reason=reason, result={"replayed": True})
            await ctx.ledger.put_outcome(key, outcome)
            return outcome
        if plan.noop or replayed:
            outcome = Outcome(**common, status=Status.ALREADY_DONE, reason=plan.reason or "already as intended")
            await ctx.ledger.put_outcome(key, outcome)
            return outcome
        refused = await _budget_and_intent(ctx, spec, key, plan, validated, previous, common)
        if refused is not None:
            return refused
        result = await responder.apply(ctx, plan, key)
        outcome = Outcome(**common, status=Status.DONE, result=result)
        await ctx.ledger.put_outcome(key, outcome)
        return outcome
    except NotApplicable as error:
        return Outcome(**base, status=Status.SKIPPED, reason=f"not applicable: {error}")
    except ActionError as error:
        return Outcome(**base, status=Status.FAILED, reason=str(error))
    except Exception as error:  # an API failure is a recorded outcome; the engine decides whether to retry
        return Outcome(**base, status=Status.FAILED, reason=describe_error(error), retryable=is_transient(error))


async def _budget_and_intent(
    ctx: ActionContext,
    spec: registry.ActionSpec,
    key: str,
    plan: Plan,
    validated: BaseModel,
    previous: dict[str, Any] | None,
    common: dict[str, Any],
) -> Outcome | None:
    """The destructive budget and the intent, written at once (one storage round trip less before the write); the
    outcome that stops the action, or None when it may act. An intent recorded beside a refusal of the budget gets
    a SKIPPED outcome, so the ledger never leaves it for a replay or a rollback to judge."""
    intent = ctx.ledger.put_intent(key, spec.name, plan, params=validated.model_dump(mode="json"), previous=previous)
    allowed: bool = True
    if spec.destructive and previous is None:
        assert ctx.budget is not None
        allowed, recorded = await asyncio.gather(ctx.budget.try_consume(spec.name), intent)
    else:
        recorded = await intent
    if not recorded:
        # Another attempt at this very action recorded its intent since we read the ledger: it acts, we do not.
        reason = "another attempt at this action recorded its intent first; this one did not act"
        return Outcome(**common, status=Status.FAILED, reason=reason, retryable=True)
    if not allowed:
        limit = ctx.settings.destructive_actions_per_hour
        skipped = Outcome(**common, status=Status.SKIPPED, reason=f"destructive-action cap of {limit}/h reached")
        await ctx.ledger.put_outcome(key, skipped)
        return skipped
    return None


async def _applied_since(responder: Responder, ctx: ActionContext, plan: Plan, intent_at: float) -> bool:
    if not hasattr(responder, "applied_since"):
        return False
    detector: DetectsReplay = responder  # type: ignore[assignment]
    return await detector.applied_since(ctx, plan, intent_at)


async def _judge_interrupted(
    ctx: ActionContext, responder: Responder, params: BaseModel, plan: Plan, intent: dict[str, Any]
) -> tuple[Plan, bool]:
    """The target as an interrupted attempt left it: (the plan read now, whether that attempt's write happened).
    The attempt may have been stopped mid-request (its worker died, or its lease was about to lapse): a request
    already sent can still land. Until RIPOSTE_REPLAY_SETTLE_SECONDS after its intent, a target that does not show
    the write yet is read again once that time has passed, so a write about to land is not made a second time."""
    intent_at = float(intent.get("at", 0))
    replayed = await _applied_since(responder, ctx, plan, intent_at)
    remaining = intent_at + ctx.settings.replay_settle_seconds - time.time()
    if plan.noop or replayed or remaining <= 0:
        return plan, replayed
    await asyncio.sleep(remaining)
    plan = await responder.plan(ctx, params)
    return plan, await _applied_since(responder, ctx, plan, intent_at)


async def settle(ctx: ActionContext, key: str) -> tuple[Outcome, float] | None:
    """What the attempt recorded under `key` did, with the time of its intent, from the ledger alone (rollback reads
    it, whatever the run says). An intent without an outcome (its worker died, or stopped, between the two) is
    judged as a replay judges it: from the target's current state against the recorded plan. It is then recorded:
    DONE (undoable, with the prior state recorded before the write) or SKIPPED, so no later attempt applies it.
    None when nothing was ever attempted under `key`."""
    entry = await ctx.ledger.get(key)
    if entry is None:
        return None
    at = float(entry.get("at", 0))
    if entry.get("state") == "done":
        return Outcome.model_validate(entry["outcome"]), at
    name = str(entry.get("action", ""))
    recorded = Plan.model_validate(entry["plan"])
    common: dict[str, Any] = dict(
        action=name, idempotency_key=key, target=recorded.target, prior=recorded.prior, intended=recorded.intended
    )
    try:
        registered = registry.get(name)
        responder: Responder = registered.implementation()
        if "params" not in entry:
            raise ActionError("the intent does not record the action's parameters")
        validated = _params(registered.spec, entry["params"])
        current = await responder.plan(ctx, validated)
        current, replayed = await _judge_interrupted(ctx, responder, validated, current, entry)
        applied = current.noop or replayed
    except Exception as error:
        reason = f"could not tell whether the interrupted attempt applied: {describe_error(error)}"
        return Outcome(**common, status=Status.FAILED, reason=reason), at
    if applied:
        reason = "completed by an earlier attempt that was interrupted before recording it"
        outcome = Outcome(**common, status=Status.DONE, reason=reason, result={"replayed": True})
    else:
        outcome = Outcome(**common, status=Status.SKIPPED, reason="its intent was recorded, its write never made")
    await ctx.ledger.put_outcome(key, outcome)
    return outcome, at


async def undo(ctx: ActionContext, outcome: Outcome) -> Outcome:
    try:
        registered = registry.get(outcome.action)
    except KeyError as error:
        return outcome.model_copy(update={"status": Status.FAILED, "reason": f"undo failed: {error}"})
    if not registered.spec.reversible:
        hint = registered.spec.undo_hint or "this action cannot be undone automatically"
        return outcome.model_copy(update={"status": Status.SKIPPED, "reason": hint})
    if outcome.status is not Status.DONE:
        return outcome.model_copy(update={"status": Status.SKIPPED, "reason": f"nothing to undo ({outcome.status})"})
    responder: Responder = registered.implementation()
    try:
        result = await responder.undo(ctx, outcome)
    except Exception as error:
        return outcome.model_copy(update={"status": Status.FAILED, "reason": f"undo failed: {describe_error(error)}"})
    return outcome.model_copy(update={"status": Status.UNDONE, "result": result, "reason": "restored the prior state"})


async def enrich(
    ctx: ActionContext, name: str, params: dict[str, Any] | BaseModel, *, time_limit_s: float | None = None
) -> Finding:
    """time_limit_s: the step's own limit (its playbook `timeout`), never above RIPOSTE_ENRICHMENT_TIMEOUT_SECONDS."""
    started = time.perf_counter()
    limit = min(ctx.settings.enrichment_timeout_seconds, time_limit_s or ctx.settings.enrichment_timeout_seconds)
    try:
        registered = registry.get(name)
        validated = _params(registered.spec, params)
        async with asyncio.timeout(limit):
            data = await registered.implementation(ctx, validated)
        payload = data.model_dump(mode="json", by_alias=True) if isinstance(data, BaseModel) else dict(data)
        return Finding(enricher=name, ok=True, data=payload, elapsed_ms=(time.perf_counter() - started) * 1000)
    except TimeoutError:
        error, transient = f"timed out after {limit:g} s", True
    except Exception as exc:
        error, transient = describe_error(exc), is_transient(exc)
    elapsed = (time.perf_counter() - started) * 1000
    return Finding(enricher=name, ok=False, error=error, elapsed_ms=elapsed, retryable=transient)


def is_transient(error: BaseException) -> bool:
    """Throttling (429), unavailability (5xx, 408), time-outs and dropped connections: the same call may succeed
    later. A refusal (400, 403, 404, 409, 412) will not."""
    from shared.azure.errors import AzureError

    if isinstance(error, AzureError):
        return error.retryable
    return isinstance(error, TimeoutError | ConnectionError)


def describe_error(error: BaseException) -> str:
    from shared.azure.errors import AzureError

    if isinstance(error, AzureError):
        return str(error)
    return f"{type(error).__name__}: {error}"
