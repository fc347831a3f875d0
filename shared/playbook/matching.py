"""Which playbooks apply to an incident. Works on the incident summary (the JSON the API shows), so the same
expressions work in match conditions, step conditions and the API."""

from __future__ import annotations

import re
from typing import Any

from shared.armid import name_of
from shared.playbook.conditions import ConditionError, is_true
from shared.playbook.model import Playbook


def source_of(incident: dict[str, Any]) -> str:
    dialect = str(incident.get("dialect", ""))
    if dialect.startswith("sentinel"):
        return "sentinel"
    if dialect == "security_alert" and "sentinel" in str(incident.get("provider", "")).lower():
        return "sentinel"
    return "defender"


def entities_of(incident: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    if kind == "VirtualMachine":  # derived in intake from Host and AzureResource entities, one per ARM id
        return list(incident.get("virtualMachines", []))
    return [e for e in incident.get("entities", []) if e.get("kind") == kind]


def why_not(playbook: Playbook, incident: dict[str, Any]) -> str | None:
    """None when the playbook applies, else the first reason it does not."""
    rule = playbook.match
    if rule.sources and source_of(incident) not in rule.sources:
        return f"source {source_of(incident)} is not one of {', '.join(rule.sources)}"
    if rule.severities and incident.get("severity") not in rule.severities:
        return f"severity {incident.get('severity')} is not one of {', '.join(rule.severities)}"
    if rule.title and not re.search(rule.title, str(incident.get("title", "")), re.IGNORECASE):
        return f"title does not match {rule.title!r}"
    if rule.analytic_rule_ids:
        wanted = {name_of(r).lower() for r in rule.analytic_rule_ids}  # a rule's ARM id or its id alone
        have = {name_of(r).lower() for r in incident.get("analyticRuleIds", [])}
        if not wanted & have:
            return "no matching analytic rule"
    if rule.tactics and not {t.lower() for t in rule.tactics} & {t.lower() for t in incident.get("tactics", [])}:
        return f"no tactic among {', '.join(rule.tactics)}"
    if rule.entity_kinds and not any(entities_of(incident, kind) for kind in rule.entity_kinds):
        return f"no entity of kind {' or '.join(rule.entity_kinds)}"
    if rule.condition:
        try:
            if not is_true(rule.condition, {"incident": incident}):
                return f"condition {rule.condition!r} is false"
        except ConditionError as exc:
            return f"condition could not be evaluated: {exc}"
    return None


def matching(playbooks: dict[str, Playbook], incident: dict[str, Any]) -> list[Playbook]:
    return [p for p in playbooks.values() if why_not(p, incident) is None]
