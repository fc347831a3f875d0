"""A webhook sink: POST /_sink/{name} records what the product posts (Teams-style Adaptive Card messages) and
answers like a Teams incoming webhook: 200 with the body "1". The admin API lists and clears what arrived."""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from local.cloud.provider import Provider, route


class SinkProvider(Provider):
    service = "sink"
    authenticated = False

    @route("POST", "/_sink/{name}")
    async def receive(self, request: Request, name: str) -> Response:
        raw = await request.body()
        body: Any
        try:
            body = json.loads(raw) if raw else None
        except (ValueError, UnicodeDecodeError):
            body = raw.decode("utf-8", errors="replace")
        if body is None or (isinstance(body, str) and not body.strip()):
            # A Teams incoming webhook rejects an empty post with 400 and a text reason; nothing reaches the channel.
            return PlainTextResponse("Summary or Text is required.", status_code=400)
        self.cloud.sink.append(
            {
                "name": name,
                "time": time.time(),
                "contentType": request.headers.get("content-type", ""),
                "query": request.url.query,
                "body": body,
            }
        )
        return PlainTextResponse("1")

    def _posts(self, name: str | None) -> list[dict[str, Any]]:
        return [p for p in self.cloud.sink if name is None or p["name"] == name]

    @route("GET", "/_admin/sink", service="admin")
    @route("GET", "/_admin/sink/{name}", service="admin")
    async def list_posts(self, request: Request, name: str | None = None) -> Response:
        return JSONResponse({"value": self._posts(name)})

    @route("DELETE", "/_admin/sink", service="admin")
    @route("DELETE", "/_admin/sink/{name}", service="admin")
    async def clear_posts(self, request: Request, name: str | None = None) -> Response:
        self.cloud.sink[:] = [p for p in self.cloud.sink if name is not None and p["name"] != name]
        return Response(status_code=204)
