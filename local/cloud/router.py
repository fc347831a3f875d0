"""A small case-insensitive router: ARM paths and ids are case-insensitive, Graph paths are not strict either."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

Handler = Callable[..., Awaitable[Response]]

_PARAM = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str  # as written, e.g. /v1.0/users/{user_id}; used by faults and rate limits
    regex: re.Pattern[str]
    handler: Handler
    service: str  # graph | arm | loganalytics | identity | admin | sink
    authenticated: bool


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, pattern: str, handler: Handler, *, service: str, authenticated: bool = True) -> None:
        body = _PARAM.sub(
            lambda m: f"(?P<{m.group(1)}>[^/]+)", re.escape(pattern).replace(r"\{", "{").replace(r"\}", "}")
        )
        regex = re.compile(f"^{body}/?$", re.IGNORECASE)
        self.routes.append(Route(method.upper(), pattern, regex, handler, service, authenticated))

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, Any], bool]:
        """Returns (route, params, path_exists). path_exists without route means 405."""
        path_exists = False
        for route in self.routes:
            m = route.regex.match(path)
            if m is None:
                continue
            if route.method == method:
                return route, m.groupdict(), True
            path_exists = True
        return None, {}, path_exists


def request_params(request: Request) -> dict[str, str]:
    """Query parameters with case-insensitive names, like ARM and Graph ($FILTER == $filter)."""
    return {k.lower(): v for k, v in request.query_params.items()}
