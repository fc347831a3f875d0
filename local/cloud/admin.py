"""The admin API under /_admin (no token): the tenant document, reset, faults, rate limits, the request log and
the connection facts a client needs. Admin calls are not written to the request log."""

from __future__ import annotations

import fnmatch
import json
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from local.cloud.controls import ControlError, Controls
from local.cloud.router import Router, request_params, service_routes
from local.cloud.seed import SECTIONS, SeedError
from local.cloud.state import Cloud


def admin_error(status: int, message: str, code: str = "BadRequest") -> Response:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return None
    return json.loads(raw)


def _controls(cloud: Cloud) -> Controls:
    controls: Controls = cloud.controls
    return controls


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


def register(router: Router, cloud: Cloud) -> None:
    route = service_routes(router, "admin", authenticated=False)

    @route("GET", "/_admin/tenant")
    async def get_tenant(request: Request) -> Response:
        return JSONResponse(cloud.doc)

    @route("PUT", "/_admin/tenant")
    async def put_tenant(request: Request) -> Response:
        try:
            doc = await _json_body(request)
        except ValueError as exc:
            return admin_error(400, f"The tenant document is not valid JSON: {exc}")
        if not isinstance(doc, dict):
            return admin_error(400, f"The tenant document must be a JSON object with sections {', '.join(SECTIONS)}.")
        try:
            cloud.replace(doc)
        except SeedError as exc:
            return admin_error(400, f"Invalid tenant document: {exc}")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a shape a section's expander cannot read
            return admin_error(400, f"Invalid tenant document: {type(exc).__name__}: {exc}")
        return JSONResponse({"generation": cloud.generation, "sections": list(cloud.doc)})

    @route("POST", "/_admin/reset")
    async def reset(request: Request) -> Response:
        cloud.reset()
        return JSONResponse({"generation": cloud.generation, "seed": str(cloud.seed_path)})

    # ---- faults
    @route("GET", "/_admin/faults")
    async def list_faults(request: Request) -> Response:
        return JSONResponse({"value": _controls(cloud).describe_faults()})

    @route("POST", "/_admin/faults")
    async def add_faults(request: Request) -> Response:
        try:
            added = _controls(cloud).add_faults(await _json_body(request))
        except (ControlError, ValueError) as exc:
            return admin_error(400, f"Invalid fault: {exc}")
        return JSONResponse({"value": [f.describe() for f in added]}, status_code=201)

    @route("DELETE", "/_admin/faults")
    async def clear_faults(request: Request) -> Response:
        _controls(cloud).clear_faults()
        return Response(status_code=204)

    @route("DELETE", "/_admin/faults/{fault_id}")
    async def delete_fault(request: Request, fault_id: str) -> Response:
        controls = _controls(cloud)
        kept = [f for f in controls.faults if f.id != fault_id]
        if len(kept) == len(controls.faults):
            return admin_error(404, f"No fault '{fault_id}'.", "NotFound")
        controls.faults[:] = kept
        return Response(status_code=204)

    # ---- rate limits
    @route("GET", "/_admin/limits")
    async def list_limits(request: Request) -> Response:
        return JSONResponse({"value": _controls(cloud).describe_limits()})

    @route("POST", "/_admin/limits")
    async def add_limits(request: Request) -> Response:
        try:
            added = _controls(cloud).add_limits(await _json_body(request))
        except (ControlError, ValueError) as exc:
            return admin_error(400, f"Invalid limits: {exc}")
        described = {d["name"]: d for d in _controls(cloud).describe_limits()}
        return JSONResponse({"value": [described[limit.name] for limit in added]}, status_code=201)

    @route("DELETE", "/_admin/limits")
    async def clear_limits(request: Request) -> Response:
        _controls(cloud).clear_limits()
        return Response(status_code=204)

    # ---- request log
    @route("GET", "/_admin/requests")
    async def list_requests(request: Request) -> Response:
        params = request_params(request)
        method = params.get("method", "").upper()
        service = params.get("service", "").lower()
        path_glob = params.get("path")
        pattern_glob = params.get("pattern")
        status = params.get("status")
        try:
            since = float(params["since"]) if "since" in params else None
        except ValueError:
            return admin_error(400, "'since' must be an epoch time in seconds")
        path_re = re.compile(fnmatch.translate(path_glob), re.IGNORECASE) if path_glob else None
        pattern_re = re.compile(fnmatch.translate(pattern_glob), re.IGNORECASE) if pattern_glob else None
        entries = [
            e.as_json()
            for e in list(cloud.request_log)
            if (not method or e.method == method)
            and (not service or e.service == service)
            and (since is None or e.time >= since)
            and (path_re is None or path_re.match(e.path))
            and (pattern_re is None or pattern_re.match(e.pattern))
            and (status is None or str(e.status) == status)
        ]
        return JSONResponse({"value": entries})

    @route("DELETE", "/_admin/requests")
    async def clear_requests(request: Request) -> Response:
        cloud.request_log.clear()
        return Response(status_code=204)

    # ---- connection facts
    @route("GET", "/_admin/connection")
    async def get_connection(request: Request) -> Response:
        return JSONResponse(connection(cloud))
