"""Microsoft Defender for Endpoint: machines and machine actions (isolate, release, antivirus scan, investigation
package, app restriction).

There is no official Python SDK for this API, so the adapter builds its own azure-core pipeline, as the generated Azure
SDKs do: a request id, a retry policy, the bearer-token policy for the WindowsDefenderATP audience, the limiter, and
azure-core's HTTP logging (headers redacted). Methods return the API's JSON and raise shared.azure.errors.AzureError.
azure-core is imported when the first call builds the client, so importing this module stays cheap.

Retries: a GET is retried on 408/429/5xx like any SDK call. A POST creates a machine action, so it is retried only on
429 (the service refused it, nothing was created): after a 5xx or a lost response the action may exist, and the
responder's plan finds it there instead of creating a second one (docs/reference/defender-for-endpoint.md)."""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

from shared.azure.errors import NotFound, from_sdk
from shared.azure.limits import Limits, retry_after_seconds
from shared.settings import Settings

if TYPE_CHECKING:
    from azure.core import AsyncPipelineClient

SERVICE = "mde"
# The WindowsDefenderATP application's audience; both API hosts (api.security and api.securitycenter) accept it.
MDE_SCOPE = "https://api.securitycenter.microsoft.com/.default"
MDE_APP_ID = "fc780465-2017-40d4-a0c5-307022471b92"  # WindowsDefenderATP, the same in every tenant
MACHINE_ID = re.compile(r"^[0-9a-fA-F]{40}$")
HOST_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9-]{1,63})*$")
ACTION_TYPES = frozenset(
    {"Isolate", "Unisolate", "RunAntiVirusScan", "CollectInvestigationPackage", "RestrictCodeExecution",
     "UnrestrictCodeExecution"}
)  # fmt: skip
# The POST route of each machine action type.
ACTION_ROUTES = {
    "Isolate": "isolate",
    "Unisolate": "unisolate",
    "RunAntiVirusScan": "runAntiVirusScan",
    "CollectInvestigationPackage": "collectInvestigationPackage",
    "RestrictCodeExecution": "restrictCodeExecution",
    "UnrestrictCodeExecution": "unrestrictCodeExecution",
}
ACTIONS_PAGE = 50  # the newest actions of one machine; older ones never decide its current state


def machine_id(value: str) -> str:
    """A Defender for Endpoint device id (40 hex digits), lower case; anything else never reaches a URL."""
    if not isinstance(value, str) or not MACHINE_ID.match(value):
        raise ValueError(f"not a Defender for Endpoint device id (40 hex digits): {value!r}")
    return value.lower()


def action_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise ValueError(f"not a machine action id (GUID): {value!r}") from None


def odata_string(value: str) -> str:
    """An OData string literal: quoted, with quotes doubled. Callers validate the value's form first."""
    return "'" + value.replace("'", "''") + "'"


def _retry_policy(settings: Settings) -> Any:
    from azure.core.pipeline.policies import AsyncRetryPolicy

    class MachineActionRetryPolicy(AsyncRetryPolicy):  # type: ignore[type-arg]
        """A POST is retried only on 429: a machine action refused by throttling was never created."""

        def is_retry(self, settings: dict[str, Any], response: Any) -> bool:
            if response.http_request.method.upper() == "POST":
                return bool(settings["total"]) and response.http_response.status_code == 429
            return bool(super().is_retry(settings, response))

    return MachineActionRetryPolicy(
        retry_total=settings.max_retries,
        retry_status=settings.max_retries,
        retry_backoff_factor=settings.retry_backoff_seconds,
    )


def _admission_policy(limits: Limits) -> Any:
    """Every attempt, retries included, waits for the limiter; a 429 pauses it for Retry-After."""
    from azure.core.pipeline import PipelineRequest, PipelineResponse
    from azure.core.pipeline.policies import AsyncHTTPPolicy

    limiter = limits.mde

    class AdmissionPolicy(AsyncHTTPPolicy):  # type: ignore[type-arg]
        async def send(self, request: PipelineRequest[Any]) -> PipelineResponse[Any, Any]:
            await limiter.acquire()
            response: PipelineResponse[Any, Any] = await self.next.send(request)
            if response.http_response.status_code == 429:
                await limiter.throttled(retry_after_seconds(response.http_response.headers.get("Retry-After")))
            return response

    return AdmissionPolicy()


class MdeAdapter:
    def __init__(self, settings: Settings, credential: Any, limits: Limits) -> None:
        self.settings = settings
        self.credential = credential
        self.limits = limits
        self._client: AsyncPipelineClient[Any, Any] | None = None

    @property
    def client(self) -> AsyncPipelineClient[Any, Any]:
        if self._client is None:
            self._client = self._build()
        return self._client

    def _build(self) -> AsyncPipelineClient[Any, Any]:
        from azure.core import AsyncPipelineClient
        from azure.core.pipeline.policies import (
            AsyncBearerTokenCredentialPolicy,
            HeadersPolicy,
            HttpLoggingPolicy,
            NetworkTraceLoggingPolicy,
            RequestIdPolicy,
            UserAgentPolicy,
        )
        from azure.core.pipeline.transport import AioHttpTransport

        transport_options: dict[str, Any] = {"connection_timeout": 30, "read_timeout": 100}
        if self.settings.ca_bundle:
            transport_options["connection_verify"] = self.settings.ca_bundle
        policies = [
            RequestIdPolicy(),
            HeadersPolicy({"Accept": "application/json"}),
            UserAgentPolicy(sdk_moniker="riposte-mde"),
            _retry_policy(self.settings),
            AsyncBearerTokenCredentialPolicy(self.credential, MDE_SCOPE),
            _admission_policy(self.limits),
            NetworkTraceLoggingPolicy(),
            HttpLoggingPolicy(),
        ]
        return AsyncPipelineClient(
            base_url=self.settings.mde_endpoint.rstrip("/"),
            policies=policies,
            transport=AioHttpTransport(**transport_options),
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
        self._client = None

    async def _send(
        self, method: str, path: str, *, params: dict[str, str] | None = None, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        from azure.core.exceptions import HttpResponseError
        from azure.core.rest import HttpRequest

        url = f"{self.settings.mde_endpoint.rstrip('/')}/api/{path}"
        request = HttpRequest(method, url, params=params, json=body)
        try:
            response = await self.client.send_request(request)
            if response.status_code >= 400:
                raise HttpResponseError(response=response)
        except Exception as error:
            raise from_sdk(SERVICE, error) from error
        if not response.content:
            return {}
        document: dict[str, Any] = response.json()
        document.pop("@odata.context", None)
        return document

    # ------------------------------------------------------------------------------------------ machines
    async def get_machine(self, device_id: str) -> dict[str, Any]:
        """GET /api/machines/{id}. NotFound when Defender for Endpoint has no such device."""
        return await self._send("GET", f"machines/{machine_id(device_id)}")

    async def find_machines(self, odata_filter: str, top: int = 10) -> list[dict[str, Any]]:
        """GET /api/machines?$filter=...: the filter is built by the caller from validated values only. The API
        answers 404 when nothing matches, which is an empty list here."""
        try:
            page = await self._send("GET", "machines", params={"$filter": odata_filter, "$top": str(top)})
        except NotFound:
            return []
        return [m for m in page.get("value") or [] if isinstance(m, dict)]

    async def logon_users(self, device_id: str) -> list[dict[str, Any]]:
        """GET /api/machines/{id}/logonusers: the accounts that signed in to the device recently."""
        page = await self._send("GET", f"machines/{machine_id(device_id)}/logonusers")
        return [u for u in page.get("value") or [] if isinstance(u, dict)]

    # ------------------------------------------------------------------------------------------ machine actions
    async def list_machine_actions(self, device_id: str) -> list[dict[str, Any]]:
        """The device's most recent machine actions, newest first (ISO-8601 UTC times of one format sort in order)."""
        params = {"$filter": f"machineId eq {odata_string(machine_id(device_id))}", "$top": str(ACTIONS_PAGE)}
        page = await self._send("GET", "machineactions", params=params)
        found = [a for a in page.get("value") or [] if isinstance(a, dict)]
        found.sort(key=lambda a: str(a.get("creationDateTimeUtc") or ""), reverse=True)
        return found

    async def get_machine_action(self, machine_action_id: str) -> dict[str, Any]:
        return await self._send("GET", f"machineactions/{action_id(machine_action_id)}")

    async def start_machine_action(self, device_id: str, action_type: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST /api/machines/{id}/<action>: 201 with the machine action, Pending until the device picks it up."""
        if action_type not in ACTION_ROUTES:
            raise ValueError(f"not a machine action Riposte takes: {action_type!r}")
        return await self._send("POST", f"machines/{machine_id(device_id)}/{ACTION_ROUTES[action_type]}", body=body)

    async def package_uri(self, machine_action_id: str) -> str:
        """GET /api/machineactions/{id}/getPackageUri: a short-lived download link (2 calls a minute: call once)."""
        document = await self._send("GET", f"machineactions/{action_id(machine_action_id)}/getPackageUri")
        return str(document.get("value") or "").strip('"')


ADAPTER = MdeAdapter
