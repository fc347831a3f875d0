"""The emulated cloud as one ASGI app: a pipeline (path clean-up, auth, rate limits, faults, request log) in front of
one router that every service's provider registers its operations on."""

from __future__ import annotations

import json
import re
import time
from typing import Any, NoReturn

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from local.cloud import identity
from local.cloud.controls import Controls
from local.cloud.errors import CloudError, error_for, service_error
from local.cloud.router import Router
from local.cloud.state import Cloud, LoggedRequest

_SLASHES = re.compile(r"/{2,}")
_UNLOGGED = ("admin",)  # the admin API is how tests look at the log; logging it would drown what they look for


def service_of_path(path: str) -> str:
    lowered = path.lower()
    if lowered.startswith(("/v1.0/", "/beta/")) or lowered in ("/v1.0", "/beta"):
        return "graph"
    if lowered.startswith("/v1/"):
        return "loganalytics"
    if lowered.startswith("/api/"):
        return "mde"
    if lowered.startswith("/_admin"):
        return "admin"
    if lowered.startswith("/_sink"):
        return "sink"
    return "arm"


class CloudApp:
    def __init__(self, cloud: Cloud, router: Router) -> None:
        self.cloud = cloud
        self.router = router
        if cloud.controls is None:
            cloud.controls = Controls()
            cloud.runtime["controls"] = cloud.controls

    @property
    def controls(self) -> Controls:
        controls: Controls = self.cloud.controls
        return controls

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
        path = scope["path"]
        if "//" in path:
            path = _SLASHES.sub("/", path)
            scope = dict(scope, path=path, raw_path=path.encode())
        request = Request(scope, receive)
        response = await self.handle(request, path)
        await response(scope, receive, send)

    async def handle(self, request: Request, path: str) -> Response:
        started = time.time()
        clock = time.perf_counter()
        method = request.method.upper()
        route, params, path_exists = self.router.match(method, path)
        service = route.service if route else service_of_path(path)
        body_bytes = await request.body()
        try:
            if route is None:
                self._unrouted(request, service, method, path, path_exists)
            response = await self._run(
                request, route.handler, params, route.pattern, service, method, path, route.authenticated
            )
        except CloudError as error:  # the pipeline's own answers (auth, routing), before any operation ran
            response = error.response()
        if service not in _UNLOGGED:
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
                    duration_ms=(time.perf_counter() - clock) * 1000,
                )
            )
        return response

    async def _run(
        self,
        request: Request,
        handler: Any,
        params: dict[str, Any],
        pattern: str,
        service: str,
        method: str,
        path: str,
        authenticated: bool,
    ) -> Response:
        if authenticated:
            identity.require_bearer(request, service)
        if service in _UNLOGGED:
            return await self._call(handler, request, params, service)
        admission = await self.controls.admit(
            pattern=pattern, service=service, method=method, path=path, query=request.url.query
        )
        if admission.rejection is not None:
            return admission.rejection
        try:
            response = await self._call(handler, request, params, service)
        finally:
            admission.release()
        if admission.after is not None:
            return admission.after
        for name, value in admission.headers.items():
            response.headers[name] = value
        return response

    @staticmethod
    def _unrouted(request: Request, service: str, method: str, path: str, path_exists: bool) -> NoReturn:
        # Real services authenticate before they route: no valid token is a 401 even on an unknown path.
        if service in identity.AUDIENCES:
            identity.require_bearer(request, service)
        if path_exists:
            raise service_error(service, 405, "MethodNotAllowed", f"The method '{method}' is not allowed on '{path}'.")
        if service == "graph":  # what Graph says for a path it does not know
            segment = path.rstrip("/").rsplit("/", 1)[-1]
            raise service_error(service, 400, "BadRequest", f"Resource not found for the segment '{segment}'.")
        raise service_error(service, 404, "NotFound", f"No emulated resource at '{path}'.")

    @staticmethod
    async def _call(handler: Any, request: Request, params: dict[str, Any], service: str) -> Response:
        try:
            response: Response = await handler(request, **params)
        except CloudError as error:  # the one place an operation's error becomes the service's error body
            return error.response(request)
        except Exception as exc:  # an emulator bug must show up as the service's 500, with the reason
            return error_for(service, 500, "InternalServerError", f"{type(exc).__name__}: {exc}")
        return response


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
    for provider in services.providers(cloud):
        provider.register(router)
    return CloudApp(cloud, router)
