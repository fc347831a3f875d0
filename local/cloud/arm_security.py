"""Microsoft Defender for Cloud (Microsoft.Security): the recommendations' definitions (assessmentMetadata), each
resource's assessments, and the subscription's secure score (ascScore) with its controls.

The tenant document keeps them compactly under `arm.security`: `recommendations` (name, displayName, severity,
categories, remediation), `assessments` (resource, recommendation, status Healthy/Unhealthy/NotApplicable, cause,
description) and `secureScoreControls` (name, displayName, max, current, healthy/unhealthy/notApplicable counts,
recommendations). They are answered in the REST shapes; the secure score is the sum of its controls, as in the
service (current and max add up, percentage is current / max)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from local.cloud.arm_resources import ArmProvider, Json, resource_not_found
from local.cloud.errors import ArmError
from local.cloud.provider import route
from local.cloud.router import request_params

NAMESPACE = "Microsoft.Security"
ASC_SCORE = "ascScore"
SCORES = "/subscriptions/{subscription}/providers/Microsoft.Security/secureScores"
RESOURCE = "/subscriptions/{subscription}/resourceGroups/{group}/providers/{namespace}/{kind}/{name}"


def _metadata_id(name: str) -> str:
    return f"/providers/Microsoft.Security/assessmentMetadata/{name}"


def render_metadata(item: Json) -> Json:
    return {
        "id": _metadata_id(item["name"]),
        "name": item["name"],
        "type": "Microsoft.Security/assessmentMetadata",
        "properties": {
            "displayName": item.get("displayName"),
            "description": item.get("description") or item.get("displayName"),
            "remediationDescription": item.get("remediation") or "",
            "categories": list(item.get("categories") or []),
            "severity": item.get("severity") or "Medium",
            "userImpact": item.get("userImpact") or "Low",
            "implementationEffort": item.get("implementationEffort") or "Low",
            "threats": list(item.get("threats") or []),
            "assessmentType": "BuiltIn",
        },
    }


def render_assessment(item: Json, metadata: Json | None) -> Json:
    resource = str(item["resource"])
    name = str(item["recommendation"])
    status: Json = {"code": item.get("status") or "Unhealthy"}
    for key in ("cause", "description"):
        if item.get(key):
            status[key] = item[key]
    return {
        "id": f"{resource}/providers/Microsoft.Security/assessments/{name}",
        "name": name,
        "type": "Microsoft.Security/assessments",
        "properties": {
            "resourceDetails": {"source": "Azure", "id": resource},
            "displayName": (metadata or {}).get("displayName") or item.get("displayName") or name,
            "status": status,
            "additionalData": dict(item.get("additionalData") or {}),
        },
    }


def _score(max_score: float, current: float) -> Json:
    percentage = round(current / max_score, 4) if max_score else 0.0
    return {"max": int(max_score), "current": round(current, 2), "percentage": percentage}


def render_control(subscription: str, item: Json, expand: bool) -> Json:
    props: Json = {
        "displayName": item.get("displayName"),
        "score": _score(float(item.get("max") or 0), float(item.get("current") or 0)),
        "healthyResourceCount": int(item.get("healthy") or 0),
        "unhealthyResourceCount": int(item.get("unhealthy") or 0),
        "notApplicableResourceCount": int(item.get("notApplicable") or 0),
        "weight": int(item.get("weight") or item.get("max") or 0),
    }
    if expand:
        props["definition"] = {
            "id": f"/providers/Microsoft.Security/secureScoreControlDefinitions/{item['name']}",
            "name": item["name"],
            "type": "Microsoft.Security/secureScoreControlDefinitions",
            "properties": {
                "displayName": item.get("displayName"),
                "maxScore": int(item.get("max") or 0),
                "source": {"sourceType": "BuiltIn"},
                "assessmentDefinitions": [{"id": _metadata_id(n)} for n in item.get("recommendations") or []],
            },
        }
    return {
        "id": f"/subscriptions/{subscription}/providers/Microsoft.Security/secureScores/{ASC_SCORE}"
        f"/secureScoreControls/{item['name']}",
        "name": item["name"],
        "type": "Microsoft.Security/secureScores/secureScoreControls",
        "properties": props,
    }


class SecurityProvider(ArmProvider):
    """assessmentMetadata, assessments on a resource or a subscription, secureScores and secureScoreControls."""

    namespace = NAMESPACE

    @property
    def section(self) -> Json:
        security: Json = (self.cloud.doc.get("arm") or {}).get("security") or {}
        return security

    def metadata(self) -> dict[str, Json]:
        return {str(m["name"]).lower(): m for m in self.section.get("recommendations") or []}

    @route("GET", "/providers/Microsoft.Security/assessmentMetadata")
    async def list_metadata(self, request: Request) -> Response:
        return JSONResponse({"value": [render_metadata(m) for m in self.metadata().values()]})

    @route("GET", "/providers/Microsoft.Security/assessmentMetadata/{name}")
    async def get_metadata(self, request: Request, name: str) -> Response:
        found = self.metadata().get(name.lower())
        if found is None:
            raise ArmError(404, "NotFound", f"Assessment metadata {name} was not found")
        return JSONResponse(render_metadata(found))

    def _assessments(self, prefix: str, exact: bool) -> list[Json]:
        metadata = self.metadata()
        wanted = prefix.lower().rstrip("/")
        found = []
        for item in self.section.get("assessments") or []:
            resource = str(item.get("resource", "")).lower()
            if resource == wanted or (not exact and resource.startswith(wanted + "/")):
                found.append(render_assessment(item, metadata.get(str(item.get("recommendation")).lower())))
        return found

    @route("GET", RESOURCE + "/providers/Microsoft.Security/assessments")
    async def resource_assessments(
        self, request: Request, subscription: str, group: str, namespace: str, kind: str, name: str
    ) -> Response:
        resource = f"/subscriptions/{subscription}/resourceGroups/{group}/providers/{namespace}/{kind}/{name}"
        if self.store.get(resource) is None:
            self.require_scope(subscription, group)
            raise resource_not_found(f"{namespace}/{kind}", name, group)
        return JSONResponse({"value": self._assessments(resource, exact=True)})

    @route("GET", "/subscriptions/{subscription}/providers/Microsoft.Security/assessments")
    async def subscription_assessments(self, request: Request, subscription: str) -> Response:
        self.require_scope(subscription)
        return JSONResponse({"value": self._assessments(f"/subscriptions/{subscription}", exact=False)})

    def secure_score(self, subscription: str) -> Json:
        controls = self.section.get("secureScoreControls") or []
        max_score = sum(float(c.get("max") or 0) for c in controls)
        current = sum(float(c.get("current") or 0) for c in controls)
        return {
            "id": f"/subscriptions/{subscription}/providers/Microsoft.Security/secureScores/{ASC_SCORE}",
            "name": ASC_SCORE,
            "type": "Microsoft.Security/secureScores",
            "properties": {"displayName": "ASC score", "score": _score(max_score, current), "weight": int(max_score)},
        }

    @route("GET", SCORES)
    async def list_scores(self, request: Request, subscription: str) -> Response:
        self.require_scope(subscription)
        return JSONResponse({"value": [self.secure_score(subscription)]})

    @route("GET", SCORES + "/{score}")
    async def get_score(self, request: Request, subscription: str, score: str) -> Response:
        self.require_scope(subscription)
        if score.lower() != ASC_SCORE.lower():
            raise ArmError(404, "NotFound", f"Secure score {score} was not found")
        return JSONResponse(self.secure_score(subscription))

    def _controls(self, request: Request, subscription: str) -> Response:
        expand = request_params(request).get("$expand", "").lower() == "definition"
        controls = self.section.get("secureScoreControls") or []
        return JSONResponse({"value": [render_control(subscription, c, expand) for c in controls]})

    @route("GET", SCORES + "/{score}/secureScoreControls")
    async def score_controls(self, request: Request, subscription: str, score: str) -> Response:
        self.require_scope(subscription)
        if score.lower() != ASC_SCORE.lower():
            raise ArmError(404, "NotFound", f"Secure score {score} was not found")
        return self._controls(request, subscription)

    @route("GET", "/subscriptions/{subscription}/providers/Microsoft.Security/secureScoreControls")
    async def controls(self, request: Request, subscription: str) -> Response:
        self.require_scope(subscription)
        return self._controls(request, subscription)


# ---------------------------------------------------------------------------------------------------- alerts

ALERT = "/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Security/locations/{location}/alerts"
# POST .../alerts/{name}/<action> moves an alert to this status (204, no body). The service refuses none of these
# transitions; the state is the last one asked for.
ALERT_ACTIONS = {"resolve": "Resolved", "dismiss": "Dismissed", "activate": "Active", "inprogress": "InProgress"}


class SecurityAlertsProvider(ArmProvider):
    """Defender for Cloud alerts at resource group level (arm.security.alerts, kept in their REST shape): get one and
    change its state. Written by the response side; the provider above serves posture."""

    namespace = NAMESPACE

    def alert(self, subscription: str, group: str, location: str, name: str) -> Json:
        wanted = f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Security/locations/" + (
            f"{location}/alerts/{name}"
        )
        alerts: list[Json] = ((self.cloud.doc.get("arm") or {}).get("security") or {}).get("alerts") or []
        for found in alerts:
            if str(found.get("id", "")).lower() == wanted.lower():
                return found
        raise resource_not_found("Microsoft.Security/locations/alerts", name, group)

    @route("GET", ALERT + "/{name}")
    async def get_alert(self, request: Request, subscription: str, group: str, location: str, name: str) -> Response:
        return JSONResponse(self.alert(subscription, group, location, name))

    @route("POST", ALERT + "/{name}/{action}")
    async def set_state(
        self, request: Request, subscription: str, group: str, location: str, name: str, action: str
    ) -> Response:
        status = ALERT_ACTIONS.get(action.lower())
        if status is None:
            raise ArmError(404, "NotFound", f"No operation '{action}' on alerts")
        self.alert(subscription, group, location, name).setdefault("properties", {})["status"] = status
        return Response(status_code=204)
