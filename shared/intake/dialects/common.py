"""What the dialect modules share: the lenient input base model, severity and timestamp coercion, validation errors
as IntakeError, and the resource-identifier helpers of the alert dialects.

Input models are lenient about extra fields (the services add fields over time) and strict about what Riposte relies
on; a validation failure becomes an IntakeError naming the field."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from shared.armid import name_of, subscription_of
from shared.intake import model
from shared.intake.entities import parse_entities
from shared.intake.errors import IntakeError, path_to_target
from shared.intake.timestamps import parse_timestamp

_SEVERITIES = {s.value.lower(): s for s in model.Severity}


def _severity(value: Any) -> Any:
    if isinstance(value, str):
        return _SEVERITIES.get(value.strip().lower(), value)
    return value


def _timestamp(value: Any) -> Any:
    if isinstance(value, str):
        return parse_timestamp(value)
    return value


SeverityIn = Annotated[model.Severity, BeforeValidator(_severity)]
Timestamp = Annotated[datetime | None, BeforeValidator(_timestamp)]
RawItems = list[Any] | None


class InputModel(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class SeverityOnly(InputModel):
    severity: SeverityIn


_M = TypeVar("_M", bound=BaseModel)


def validate(cls: type[_M], payload: Any, prefix: str = "") -> _M:
    try:
        return cls.model_validate(payload)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = [p for p in error["loc"] if isinstance(p, str | int)]
        target = ".".join(filter(None, [prefix, path_to_target(loc)]))
        code = "MissingField" if error["type"] == "missing" else "InvalidValue"
        what = "is required" if code == "MissingField" else error["msg"].lower()
        raise IntakeError(code, f"'{target or 'body'}' {what}.", target or "body") from exc


_IDENTIFIER_KEYS = (
    "type",
    "azureresourceid",
    "resourceid",
    "workspaceid",
    "workspacesubscriptionid",
    "workspaceresourcegroup",
    "subscriptionid",
    "resourcegroup",
)


def identifiers(raw: list[dict[str, Any]], target: str) -> list[dict[str, str]]:
    """resourceIdentifiers with lower-cased keys (the dialects disagree on casing) and string values checked."""
    cleaned: list[dict[str, str]] = []
    for index, identifier in enumerate(raw):
        lowered = {str(k).lower(): (k, v) for k, v in identifier.items()}
        item: dict[str, str] = {}
        for key in _IDENTIFIER_KEYS:
            if key not in lowered or lowered[key][1] is None:
                continue
            original, value = lowered[key]
            if not isinstance(value, str):
                raise IntakeError("InvalidType", "Expected a string.", f"{target}[{index}].{original}")
            item[key] = value
        cleaned.append(item)
    return cleaned


def resource_ids(identifiers: list[dict[str, str]]) -> tuple[str, ...]:
    ids = [i.get("azureresourceid") or i.get("resourceid") or "" for i in identifiers]
    return tuple(i for i in ids if i)


def workspace_from_identifiers(identifiers: list[dict[str, str]]) -> model.Workspace | None:
    for identifier in identifiers:
        if identifier.get("type", "").lower() == "loganalytics":
            return model.Workspace(
                subscription_id=identifier.get("workspacesubscriptionid") or identifier.get("subscriptionid"),
                resource_group=identifier.get("workspaceresourcegroup") or identifier.get("resourcegroup"),
                customer_id=identifier.get("workspaceid"),
            )
    return None


def split_intent(values: tuple[str, ...]) -> tuple[str, ...]:
    """Defender's intent is one string that may list several tactics: 'PreAttack, Execution'."""
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())


def alert_entities(
    entity_items: list[Any] | None,
    resource_ids: tuple[str, ...],
    *,
    target: str,
    max_entities: int,
) -> tuple[model.Entity, ...]:
    """Entities of an alert plus an AzureResource entity for each resource identifier not already named by one."""
    entities = parse_entities(entity_items, target=target, max_entities=max_entities)
    known = {getattr(e, "resource_id", None) or getattr(e, "azure_id", None) for e in entities}
    known_lower = {k.lower() for k in known if isinstance(k, str)}
    for index, resource_id in enumerate(resource_ids):
        if resource_id.lower() not in known_lower:
            entities.append(
                model.AzureResourceEntity(
                    id=f"resourceIdentifiers[{index}]",
                    resource_id=resource_id,
                    subscription_id=subscription_of(resource_id),
                    friendly_name=name_of(resource_id),
                )
            )
            known_lower.add(resource_id.lower())
    if len(entities) > max_entities:
        raise IntakeError("TooManyEntities", f"{len(entities)} entities; the limit is {max_entities}.", target)
    return tuple(entities)
