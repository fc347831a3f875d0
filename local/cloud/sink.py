"""A webhook sink: POST /_sink/{name} records what the product posts (Teams-style Adaptive Card messages) and
answers like a Teams incoming webhook: 200 with the body "1". The admin API lists and clears what arrived."""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from local.cloud.router import Router, service_routes
from local.cloud.state import Cloud


def register(router: Router, cloud: Cloud) -> None:
    sink_route = service_routes(router, "sink", authenticated=False)
    admin_route = service_routes(router, "admin", authenticated=False)

    @sink_route("POST", "/_sink/{name}")
    async def receive(request: Request, name: str) -> Response:
        raw = await request.body()
        body: Any
        try:
            body = json.loads(raw) if raw else None
        except (ValueError, UnicodeDecodeError):
            body = raw.decode("utf-8", errors="replace")
        if body is None or (isinstance(body, str) and not body.strip()):
            # A Teams incoming webhook rejects an empty post with 400 and a text reason; nothing reaches the channel.
            return PlainTextResponse("Summary or Text is required.", status_code=400)
        cloud.sink.append(
            {
                "name": name,
                "time": time.time(),
                "contentType": request.headers.get("content-type", ""),
                "query": request.url.query,
                "body": body,
            }
        )
        return PlainTextResponse("1")

    def posts(name: str | None) -> list[dict[str, Any]]:
        return [p for p in cloud.sink if name is None or p["name"] == name]

    @admin_route("GET", "/_admin/sink")
    async def list_all(request: Request) -> Response:
        return JSONResponse({"value": posts(None)})

    @admin_route("GET", "/_admin/sink/{name}")
    async def list_named(request: Request, name: str) -> Response:
        return JSONResponse({"value": posts(name)})

    @admin_route("DELETE", "/_admin/sink")
    async def clear_all(request: Request) -> Response:
        cloud.sink.clear()
        return Response(status_code=204)

    @admin_route("DELETE", "/_admin/sink/{name}")
    async def clear_named(request: Request, name: str) -> Response:
        cloud.sink[:] = [p for p in cloud.sink if p["name"] != name]
        return Response(status_code=204)
