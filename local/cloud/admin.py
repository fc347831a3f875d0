"""The admin API under /_admin (no token): the tenant document, reset, faults, rate limits, the request log and
the connection facts a client needs. Admin calls are not written to the request log."""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from local.cloud.controls import ControlError, Controls
from local.cloud.errors import AdminError
from local.cloud.provider import Provider, route
from local.cloud.router import request_params
from local.cloud.seed import SECTIONS, SeedError
from local.cloud.state import Cloud, LoggedRequest


async def _json_body(request: Request, what: str) -> Any:
    """The body as JSON (None when empty), or 400 naming `what` was not JSON."""
    raw = await request.body()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise AdminError(400, f"{what}: {exc}") from exc


def sentinel_workspace(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The Log Analytics workspace Sentinel runs on: the one the incidents live in, else the first workspace."""
    workspaces: list[dict[str, Any]] = [
        r
        for r in (doc.get("arm") or {}).get("resources") or []
        if str(r.get("type", "")).lower() == "microsoft.operationalinsights/workspaces"
    ]
    incidents = (doc.get("sentinel") or {}).get("incidents") or []
    if incidents:
        m = re.search(r"/workspaces/([^/]+)/", str(incidents[0].get("id", "")), re.IGNORECASE)
        if m:
            for workspace in workspaces:
                if str(workspace.get("name", "")).lower() == m.group(1).lower():
                    return workspace
    return workspaces[0] if workspaces else None


def connection(cloud: Cloud) -> dict[str, Any]:
    doc = cloud.doc
    url = cloud.base_url
    subscriptions = [s.get("subscriptionId") for s in (doc.get("arm") or {}).get("subscriptions") or []]
    workspace = sentinel_workspace(doc)
    workspace_facts = None
    if workspace is not None:
        m = re.search(r"/subscriptions/([^/]+)/resourceGroups/([^/]+)/", str(workspace.get("id", "")), re.IGNORECASE)
        workspace_facts = {
            "resourceId": workspace.get("id"),
            "subscriptionId": m.group(1) if m else None,
            "resourceGroup": m.group(2) if m else None,
            "name": workspace.get("name"),
            "customerId": (workspace.get("properties") or {}).get("customerId"),
            "location": workspace.get("location"),
        }
    identity_endpoint = f"{url}/msi/token"
    tenant = doc.get("tenant") or {}
    return {
        "graph": f"{url}/v1.0",
        "arm": url,
        "logAnalytics": url,
        "sink": f"{url}/_sink",
        "identityEndpoint": identity_endpoint,
        "identityHeader": cloud.identity_header,
        "caCertPath": cloud.ca_path,
        "tenantId": tenant.get("id"),
        "domain": tenant.get("domain"),
        "subscriptionId": subscriptions[0] if subscriptions else None,
        "subscriptionIds": subscriptions,
        "workspaceId": workspace_facts["customerId"] if workspace_facts else None,
        "workspace": workspace_facts,
        "environment": {
            "IDENTITY_ENDPOINT": identity_endpoint,
            "IDENTITY_HEADER": cloud.identity_header,
            "REQUESTS_CA_BUNDLE": cloud.ca_path,
            "SSL_CERT_FILE": cloud.ca_path,
        },
    }


class AdminProvider(Provider):
    """The emulator's own API: what a test or the demo uses to look at and steer the emulated cloud."""

    service = "admin"
    authenticated = False

    @property
    def controls(self) -> Controls:
        controls: Controls = self.cloud.controls
        return controls

    @route("GET", "/_admin/tenant")
    async def get_tenant(self, request: Request) -> Response:
        return JSONResponse(self.cloud.doc)

    @route("PUT", "/_admin/tenant")
    async def put_tenant(self, request: Request) -> Response:
        doc = await _json_body(request, "The tenant document is not valid JSON")
        if not isinstance(doc, dict):
            raise AdminError(400, f"The tenant document must be a JSON object with sections {', '.join(SECTIONS)}.")
        try:
            self.cloud.replace(doc)
        except SeedError as exc:
            raise AdminError(400, f"Invalid tenant document: {exc}") from exc
        except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a shape a section's expander cannot read
            raise AdminError(400, f"Invalid tenant document: {type(exc).__name__}: {exc}") from exc
        return JSONResponse({"generation": self.cloud.generation, "sections": list(self.cloud.doc)})

    @route("POST", "/_admin/reset")
    async def reset(self, request: Request) -> Response:
        self.cloud.reset()
        return JSONResponse({"generation": self.cloud.generation, "seed": str(self.cloud.seed_path)})

    # ---- faults
    @route("GET", "/_admin/faults")
    async def list_faults(self, request: Request) -> Response:
        return JSONResponse({"value": self.controls.describe_faults()})

    @route("POST", "/_admin/faults")
    async def add_faults(self, request: Request) -> Response:
        spec = await _json_body(request, "Invalid fault")
        try:
            added = self.controls.add_faults(spec)
        except (ControlError, ValueError) as exc:
            raise AdminError(400, f"Invalid fault: {exc}") from exc
        return JSONResponse({"value": [f.describe() for f in added]}, status_code=201)

    @route("DELETE", "/_admin/faults")
    async def clear_faults(self, request: Request) -> Response:
        self.controls.clear_faults()
        return Response(status_code=204)

    @route("DELETE", "/_admin/faults/{fault_id}")
    async def delete_fault(self, request: Request, fault_id: str) -> Response:
        faults = self.controls.faults
        kept = [f for f in faults if f.id != fault_id]
        if len(kept) == len(faults):
            raise AdminError(404, f"No fault '{fault_id}'.", "NotFound")
        faults[:] = kept
        return Response(status_code=204)

    # ---- rate limits
    @route("GET", "/_admin/limits")
    async def list_limits(self, request: Request) -> Response:
        return JSONResponse({"value": self.controls.describe_limits()})

    @route("POST", "/_admin/limits")
    async def add_limits(self, request: Request) -> Response:
        spec = await _json_body(request, "Invalid limits")
        try:
            added = self.controls.add_limits(spec)
        except (ControlError, ValueError) as exc:
            raise AdminError(400, f"Invalid limits: {exc}") from exc
        described = {d["name"]: d for d in self.controls.describe_limits()}
        return JSONResponse({"value": [described[limit.name] for limit in added]}, status_code=201)

    @route("DELETE", "/_admin/limits")
    async def clear_limits(self, request: Request) -> Response:
        self.controls.clear_limits()
        return Response(status_code=204)

    # ---- request log
    @route("GET", "/_admin/requests")
    async def list_requests(self, request: Request) -> Response:
        params = request_params(request)
        try:
            since = float(params["since"]) if "since" in params else None
        except ValueError as exc:
            raise AdminError(400, "'since' must be an epoch time in seconds") from exc
        wanted = _request_filter(params, since)
        return JSONResponse({"value": [e.as_json() for e in list(self.cloud.request_log) if wanted(e)]})

    @route("DELETE", "/_admin/requests")
    async def clear_requests(self, request: Request) -> Response:
        self.cloud.request_log.clear()
        return Response(status_code=204)

    # ---- connection facts
    @route("GET", "/_admin/connection")
    async def get_connection(self, request: Request) -> Response:
        return JSONResponse(connection(self.cloud))


def _request_filter(params: dict[str, str], since: float | None) -> Callable[[LoggedRequest], bool]:
    """The request log entries GET /_admin/requests asks for: method, service, status, since, path/pattern globs."""
    method = params.get("method", "").upper()
    service = params.get("service", "").lower()
    status = params.get("status")
    path_glob = params.get("path")
    pattern_glob = params.get("pattern")
    path_re = re.compile(fnmatch.translate(path_glob), re.IGNORECASE) if path_glob else None
    pattern_re = re.compile(fnmatch.translate(pattern_glob), re.IGNORECASE) if pattern_glob else None

    def wanted(e: LoggedRequest) -> bool:
        return (
            (not method or e.method == method)
            and (not service or e.service == service)
            and (since is None or e.time >= since)
            and (path_re is None or path_re.match(e.path) is not None)
            and (pattern_re is None or pattern_re.match(e.pattern) is not None)
            and (status is None or str(e.status) == status)
        )

    return wanted
