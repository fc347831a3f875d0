"""Microsoft Defender for Cloud (Microsoft.Security) through azure-mgmt-security's async SecurityCenter client: a
resource's security assessments (the recommendations, each Healthy, Unhealthy or NotApplicable for it), the
assessments' metadata (severity, categories, remediation), and the subscription's secure score with its controls.
The SDK is imported inside functions only, so importing this module costs nothing at cold start."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from shared.armid import ArmId
from shared.azure.arm import SubscriptionClients, client_kwargs, translated
from shared.azure.limits import Limits
from shared.settings import Settings

if TYPE_CHECKING:
    from azure.mgmt.security.aio import SecurityCenter

SERVICE = "security"
ASC_SCORE = "ascScore"  # the subscription's overall secure score (the only secure score there is)
ALERT_TYPE = "Microsoft.Security/locations/alerts"
METADATA_TTL_S = 3600.0  # the recommendations' definitions change with Defender for Cloud releases, not per call


def rest(model: Any) -> dict[str, Any]:
    """An msrest model (this SDK's kind) in its REST JSON shape: wire names, properties nested, read-only included."""
    found: dict[str, Any] = model.serialize(keep_readonly=True) if model is not None else {}
    return found


class SecurityAdapter:
    """Defender for Cloud reads, addressed by ARM id and subscription. Methods return the API's JSON shape or raise
    AzureError."""

    def __init__(self, settings: Settings, credential: Any, limits: Limits) -> None:
        self.settings = settings
        self._credential = credential
        self._limits = limits
        self._clients: SubscriptionClients[SecurityCenter] = SubscriptionClients(self._build)
        self._metadata: tuple[float, dict[str, dict[str, Any]]] | None = None

    def _build(self, subscription: str) -> SecurityCenter:
        from azure.mgmt.security.aio import SecurityCenter

        return SecurityCenter(self._credential, subscription, **client_kwargs(self.settings))

    async def list_assessments(self, resource_id: str) -> list[dict[str, Any]]:
        """Every assessment of one resource: GET {resource id}/providers/Microsoft.Security/assessments."""
        parsed = ArmId.parse(resource_id)
        client = self._clients.get(parsed.subscription)
        async with translated(SERVICE):
            return [rest(item) async for item in client.assessments.list(str(parsed).lstrip("/"))]

    async def assessment_metadata(self, subscription: str) -> dict[str, dict[str, Any]]:
        """The definitions of every assessment (its severity, categories, remediation), by assessment name: GET
        /providers/Microsoft.Security/assessmentMetadata, read at most once an hour."""
        now = time.monotonic()
        if self._metadata is not None and now - self._metadata[0] < METADATA_TTL_S:
            return self._metadata[1]
        client = self._clients.get(subscription)
        async with translated(SERVICE):
            found = {str(item.name).lower(): rest(item) async for item in client.assessments_metadata.list()}
        self._metadata = (now, found)
        return found

    async def get_secure_score(self, subscription: str) -> dict[str, Any]:
        """GET /subscriptions/{id}/providers/Microsoft.Security/secureScores/ascScore."""
        client = self._clients.get(subscription)
        async with translated(SERVICE):
            return rest(await client.secure_scores.get(ASC_SCORE))

    async def list_secure_score_controls(self, subscription: str) -> list[dict[str, Any]]:
        """The secure score's controls, each with its score and resource counts ($expand=definition)."""
        client = self._clients.get(subscription)
        async with translated(SERVICE):
            controls = client.secure_score_controls.list_by_secure_score(ASC_SCORE, expand="definition")
            return [rest(item) async for item in controls]

    # ------------------------------------------------------------------------------------------ alerts (response)
    def _alert(self, alert_id: str) -> tuple[SecurityCenter, ArmId, str]:
        """The client, the alert's id and its location, for a resource group level alert
        (/subscriptions/../resourceGroups/../providers/Microsoft.Security/locations/{location}/alerts/{name})."""
        parsed = ArmId.parse(alert_id, ALERT_TYPE)
        parts = str(parsed).split("/")
        location = parts[parts.index("locations") + 1]
        return self._clients.get(parsed.subscription), parsed, location

    async def get_alert(self, alert_id: str) -> dict[str, Any]:
        """GET the alert (api-version 2022-01-01): properties.status is Active, InProgress, Resolved or Dismissed."""
        client, parsed, location = self._alert(alert_id)
        async with translated(SERVICE):
            return rest(await client.alerts.get_resource_group_level(parsed.resource_group, location, parsed.name))

    async def set_alert_state(self, alert_id: str, status: str) -> None:
        """POST .../alerts/{name}/resolve | dismiss | activate | inProgress (204): the alert takes `status`."""
        client, parsed, location = self._alert(alert_id)
        operations = client.alerts
        change = {
            "Resolved": operations.update_resource_group_level_state_to_resolve,
            "Dismissed": operations.update_resource_group_level_state_to_dismiss,
            "Active": operations.update_resource_group_level_state_to_activate,
            "InProgress": operations.update_resource_group_level_state_to_in_progress,
        }[status]
        async with translated(SERVICE):
            await change(parsed.resource_group, location, parsed.name)

    async def close(self) -> None:
        await self._clients.close()


ADAPTER = SecurityAdapter
