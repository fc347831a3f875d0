"""The emulated cloud as one ASGI app: a pipeline (path clean-up, auth, faults, rate limits, request log) in front of
one router that every service module registers on."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from local.cloud import identity
from local.cloud.errors import error_for
from local.cloud.router import Router
from local.cloud.state import Cloud, LoggedRequest

_SLASHES = re.compile(r"/{2,}")


def service_of_path(path: str) -> str:
    lowered = path.lower()
    if lowered.startswith("/v1.0") or lowered.startswith("/beta"):
        return "graph"
    if lowered.startswith("/v1/"):
        return "loganalytics"
    if lowered.startswith("/_admin"):
        return "admin"
    return "arm"


class CloudApp:
    def __init__(self, cloud: Cloud, router: Router) -> None:
        self.cloud = cloud
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        # Real Graph and ARM tolerate '//' (the Graph SDK produces it from a base URL with a trailing slash).
        path = _SLASHES.sub("/", scope["path"])
        if path != scope["path"]:
            scope = dict(scope, path=path, raw_path=path.encode())
        request = Request(scope, receive)
        response = await self.handle(request, path)
        await response(scope, receive, send)

    async def handle(self, request: Request, path: str) -> Response:
        started = time.time()
        method = request.method.upper()
        route, params, path_exists = self.router.match(method, path)
        service = route.service if route else service_of_path(path)
        body_bytes = await request.body()
        response: Response | None = None
        if route is None:
            if path_exists:
                response = error_for(service, 405, "MethodNotAllowed", f"The method '{method}' is not allowed on '{path}'.")
            else:
                code = "Request_ResourceNotFound" if service == "graph" else "NotFound"
                response = error_for(service, 404, code, f"No emulated resource at '{path}'.")
        else:
            if route.authenticated:
                failure = identity.check_bearer(request, service)
                if failure is not None:
                    status, code, message = failure
                    headers = {"WWW-Authenticate": 'Bearer authorization_uri="https://login.microsoftonline.com/"'}
                    response = error_for(service, status, code, message, headers)
            if response is None and service not in ("admin",):
                response = await self.cloud_controls(route.pattern, service, method, path)
            if response is None:
                try:
                    response = await route.handler(request, **params)
                except Exception as exc:  # an emulator bug must show up as the service's 500, with the reason
                    response = error_for(service, 500, "InternalServerError", f"{type(exc).__name__}: {exc}")
        if service != "admin":
            self.cloud.log(
                LoggedRequest(
                    time=started,
                    method=method,
                    path=path,
                    query=request.url.query,
                    body=_decode_body(body_bytes),
                    status=response.status_code,
                    service=service,
                    pattern=route.pattern if route else "",
                )
            )
        return response

    async def cloud_controls(self, pattern: str, service: str, method: str, path: str) -> Response | None:
        """Injected faults and enforced rate limits (admin API). None lets the request through."""
        controls = self.cloud.runtime.get("controls")
        if controls is None:
            return None
        result: Response | None = await controls.apply(pattern=pattern, service=service, method=method, path=path)
        return result


def _decode_body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return raw.decode("utf-8", errors="replace")


def build_app(cloud: Cloud) -> CloudApp:
    from local.cloud import services

    router = Router()
    identity.register(router, cloud)
    for module in services.all_modules():
        module.register(router, cloud)
    return CloudApp(cloud, router)
