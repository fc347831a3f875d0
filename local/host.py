"""A local Azure Functions host: serves function_app.py from the functions' own metadata, as `func start` would.

The Core Tools cannot be installed here, so this reads what the Python v2 model declares (routes, methods, auth
levels, triggers) and serves it on http://127.0.0.1:7071:
- HTTP triggers at /api/<route>, 405 for other methods, function keys enforced like Azure (x-functions-key header or
  `code` query) for FUNCTION and ADMIN levels;
- Event Grid triggers at /runtime/webhooks/eventgrid?functionName=NAME, with the subscription validation handshake
  and one invocation per event, the payload decoded by the Functions library's own converter;
- sync functions run in a thread pool, as the Python worker does.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import logging
import os
import re
import secrets
import sys
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.functions import meta
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

log = logging.getLogger("riposte.host")

DEFAULT_PORT = 7071
MAX_REQUEST_BYTES = 104_857_600  # the Functions host's own limit (100 MB); the app applies its smaller one
VALIDATION_EVENT = "Microsoft.EventGrid.SubscriptionValidationEvent"


def _error(status: int, code: str, message: str, target: str = "") -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "target": target}}, status_code=status)


@dataclass(frozen=True)
class HttpFunction:
    name: str
    route: str
    methods: tuple[str, ...]
    auth_level: str
    call: Callable[..., Any]
    arg_name: str


@dataclass(frozen=True)
class TriggerFunction:
    name: str
    trigger_type: str
    call: Callable[..., Any]
    arg_name: str
    queue_name: str | None = None
    connection: str | None = None


def _route_template(route: str) -> str:
    """Functions route templates to Starlette's: {x:int} -> {x}, {*rest} -> {rest:path}; optional {x?} -> {x}."""
    route = re.sub(r"\{(\w+)(?::[^}]*)?\??\}", r"{\1}", route)  # constraints first: {*rest} is not touched
    return re.sub(r"\{\*(\w+)\}", r"{\1:path}", route)


class FunctionsHost:
    def __init__(self, app: func.FunctionApp, function_key: str) -> None:
        self.function_key = function_key
        self.http: list[HttpFunction] = []
        self.triggers: dict[str, TriggerFunction] = {}
        for function in app.get_functions():
            trigger: Any = function.get_trigger()
            name = str(function.get_function_name())
            call = function.get_user_function()
            if trigger is None:
                continue
            if trigger.get_binding_name() == "httpTrigger":
                methods = tuple(m.value if hasattr(m, "value") else str(m) for m in (trigger.methods or []))
                level = str(getattr(trigger.auth_level, "value", trigger.auth_level or "FUNCTION"))
                self.http.append(
                    HttpFunction(
                        name, str(trigger.route or name), methods or ("GET", "POST"), level.upper(), call, trigger.name
                    )
                )
            else:
                self.triggers[name] = TriggerFunction(
                    name,
                    trigger.get_binding_name(),
                    call,
                    trigger.name,
                    getattr(trigger, "queue_name", None),
                    getattr(trigger, "connection", None),
                )

    # --- keys ------------------------------------------------------------------------------------------------------

    def key_ok(self, request: Request) -> bool:
        supplied = request.headers.get("x-functions-key") or request.query_params.get("code") or ""
        return secrets.compare_digest(supplied.encode(), self.function_key.encode())

    # --- invocation ------------------------------------------------------------------------------------------------

    @staticmethod
    async def invoke(call: Callable[..., Any], **kwargs: Any) -> Any:
        if inspect.iscoroutinefunction(call):
            return await call(**kwargs)
        return await run_in_threadpool(call, **kwargs)

    def http_endpoint(self, function: HttpFunction) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if request.method not in function.methods:
                return _error(405, "MethodNotAllowed", f"{request.method} is not allowed on /api/{function.route}.")
            if function.auth_level != "ANONYMOUS" and not self.key_ok(request):
                return _error(401, "Unauthorized", "A valid function key is required (x-functions-key or code).")
            body = await _read_body(request)
            if body is None:
                return _error(413, "PayloadTooLarge", f"The request body exceeds {MAX_REQUEST_BYTES} bytes.", "body")
            http_request = func.HttpRequest(
                method=request.method,
                url=str(request.url),
                headers=dict(request.headers),
                params=dict(request.query_params),
                route_params={k: str(v) for k, v in request.path_params.items()},
                body=body,
            )
            try:
                result = await self.invoke(function.call, **{function.arg_name: http_request})
            except Exception:  # the real host answers 500 and logs the exception; so do we
                log.exception("function %s failed", function.name)
                return _error(500, "FunctionFailed", f"Function {function.name} raised an exception.")
            return _to_response(result)

        return endpoint

    async def eventgrid_webhook(self, request: Request) -> Response:
        name = request.query_params.get("functionName", "")
        function = self.triggers.get(name)
        if function is None or function.trigger_type != "eventGridTrigger":
            return _error(404, "FunctionNotFound", f"No Event Grid trigger named '{name}'.", "functionName")
        if not self.key_ok(request):
            return _error(401, "Unauthorized", "A valid key is required (x-functions-key or code).")
        body = await _read_body(request)
        try:
            events = json.loads(body or b"")
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser's stack
            return _error(400, "InvalidJson", "The body is not valid JSON.", "body")
        if isinstance(events, dict):
            events = [events]  # a single CloudEvent in structured mode
        if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
            return _error(400, "InvalidEvents", "Expected a JSON array of events.", "body")
        event_type = request.headers.get("aeg-event-type", "Notification")
        if event_type == "SubscriptionValidation" or any(e.get("eventType") == VALIDATION_EVENT for e in events):
            data = events[0].get("data") if events else None
            code = data.get("validationCode") if isinstance(data, dict) else None
            if not isinstance(code, str) or not code:
                return _error(400, "MissingValidationCode", "The validation event has no data.validationCode.")
            return JSONResponse({"validationResponse": code})
        converter = meta.get_binding_registry().get("eventGridTrigger")  # type: ignore[no-untyped-call]
        for event in events:
            try:
                decoded = converter.decode(meta.Datum(json.dumps(event), "json"), trigger_metadata={})
            except (KeyError, TypeError, ValueError):
                return _error(400, "InvalidEvent", "An event is not an Event Grid event the binding can read.", "body")
            try:
                await self.invoke(function.call, **{function.arg_name: decoded})
            except Exception:
                log.exception("function %s failed on event %s", name, event.get("id"))
                return _error(500, "FunctionFailed", f"Function {name} raised an exception.")
        return Response(status_code=202)

    def queue_listeners(self) -> list[Any]:
        from local.queues import QueueListener, QueueOptions

        options = QueueOptions.from_host_json(Path.cwd())
        listeners = []
        for trigger in self.triggers.values():
            if trigger.trigger_type != "queueTrigger" or not trigger.queue_name:
                continue
            connection = os.environ.get(trigger.connection or "AzureWebJobsStorage")
            if not connection:
                log.warning("queue trigger %s: %s is not set; not listening", trigger.name, trigger.connection)
                continue

            async def invoke(message: Any, trigger: TriggerFunction = trigger) -> None:
                await self.invoke(trigger.call, **{trigger.arg_name: message})

            listeners.append(QueueListener(trigger.name, trigger.queue_name, connection, invoke, options))
        return listeners

    def asgi(self, triggers: str = "all") -> Starlette:
        """triggers: "all"; "http" (HTTP and Event Grid only); "queue" (queue triggers, plus /api/health). Flex
        Consumption scales HTTP functions and each queue-triggered function on separate instances, and so can we."""
        serves_http = triggers in ("all", "http")
        routes = [
            Route(f"/api/{template}", self.http_endpoint(f), methods=list(_with_head(f.methods)))
            for f in self.http
            if serves_http or f.route == "health"
            for template in _templates(f.route)
        ]
        if serves_http:
            routes.append(Route("/runtime/webhooks/eventgrid", self.eventgrid_webhook, methods=["POST"]))
        listeners = self.queue_listeners() if triggers in ("all", "queue") else []

        @asynccontextmanager
        async def lifespan(app: Starlette) -> Any:
            tasks = [asyncio.create_task(listener.run()) for listener in listeners]
            yield
            for listener in listeners:
                listener.stop()
            await asyncio.gather(*tasks, return_exceptions=True)

        app = Starlette(routes=routes, lifespan=lifespan)
        app.add_exception_handler(405, _method_not_allowed)
        app.add_exception_handler(404, _not_found)
        return app


def _templates(route: str) -> list[str]:
    """A catch-all parameter ({*rest}) may be empty in Functions: console/{*path} also serves /api/console."""
    template = _route_template(route)
    bare = re.sub(r"/?\{\w+:path\}$", "", template)
    return [template, bare] if bare != template else [template]


def _with_head(methods: tuple[str, ...]) -> tuple[str, ...]:
    # Starlette adds HEAD for GET; keep every declared method and let the endpoint answer 405 for the rest.
    return tuple(sorted({*methods, "GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}))


async def _method_not_allowed(request: Request, exc: Exception) -> Response:
    return _error(405, "MethodNotAllowed", f"{request.method} is not allowed on {request.url.path}.")


async def _not_found(request: Request, exc: Exception) -> Response:
    return _error(404, "NotFound", f"No function serves {request.url.path}.")


async def _read_body(request: Request) -> bytes | None:
    """The body, or None past the host's limit (read in chunks so a huge body is not buffered whole)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_REQUEST_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _to_response(result: Any) -> Response:
    if isinstance(result, func.HttpResponse):
        headers = {k: v for k, v in result.headers.items() if k.lower() != "content-type"}
        media = result.mimetype
        if result.charset and media and "charset" not in media:
            media = f"{media}; charset={result.charset}"
        return Response(result.get_body(), status_code=result.status_code, headers=headers, media_type=media)
    if result is None:
        return Response(status_code=204)
    return Response(str(result), status_code=200)


def quiet_sdk_logging() -> None:
    """azure-core logs every HTTP request at INFO; the Functions host shows WARNING and above of the SDKs."""
    for name in ("azure", "azure.core.pipeline.policies.http_logging_policy", "msal", "httpx", "kiota"):
        logging.getLogger(name).setLevel(logging.WARNING)


def function_key() -> str:
    return os.environ.get("RIPOSTE_FUNCTION_KEY") or secrets.token_urlsafe(24)


def load_app(module_name: str = "function_app") -> func.FunctionApp:
    sys.path.insert(0, os.getcwd())
    module = importlib.import_module(module_name)
    app: func.FunctionApp = module.app
    return app


def build(module_name: str = "function_app", key: str | None = None) -> FunctionsHost:
    return FunctionsHost(load_app(module_name), key or function_key())


def serve(port: int = DEFAULT_PORT, key: str | None = None) -> None:
    import uvicorn

    host = build(key=key)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    quiet_sdk_logging()
    print(f"functions host: http://127.0.0.1:{port}/api  function key: {host.function_key}", flush=True)
    for f in host.http:
        print(f"  {','.join(f.methods):12} /api/{f.route}  ({f.name}, auth {f.auth_level.lower()})", flush=True)
    for t in host.triggers.values():
        print(f"  {t.trigger_type:12} {t.name}", flush=True)
    triggers = os.environ.get("RIPOSTE_HOST_TRIGGERS", "all")
    if triggers not in ("all", "http", "queue"):
        raise SystemExit(f"RIPOSTE_HOST_TRIGGERS must be all, http or queue (got {triggers!r})")
    uvicorn.run(host.asgi(triggers), host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    serve(int(os.environ.get("RIPOSTE_HOST_PORT", DEFAULT_PORT)))
