"""The shape every emulated service takes (after localstack's service providers): one class per service whose
methods are the service's operations, each declared with the route(s) it answers by @route.

An operation returns its success response and raises the service's CloudError (errors.py) for anything else; the
app turns the exception into the service's error body, so no operation builds an error response itself."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from starlette.requests import Request

from local.cloud.router import Handler, Router
from local.cloud.state import Cloud

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class RouteSpec:
    method: str
    pattern: str
    service: str | None  # None: the provider's own
    authenticated: bool | None  # None: the provider's default
    bound: tuple[tuple[str, Any], ...]  # fixed keyword arguments, for one operation serving several resource types


def route(
    method: str,
    pattern: str,
    *,
    service: str | None = None,
    authenticated: bool | None = None,
    **bound: Any,
) -> Callable[[F], F]:
    """Declares that the decorated operation answers `method pattern`. `service` puts the route under another
    service's pipeline (the admin API's knobs of a service); `bound` keyword arguments are passed on each call."""

    def mark(operation: F) -> F:
        routes: list[RouteSpec] = operation.__dict__.setdefault("_routes", [])
        # decorators apply bottom-up: insert at the front so the routes keep the order they are written in
        routes.insert(0, RouteSpec(method, pattern, service, authenticated, tuple(bound.items())))
        return operation

    return mark


class Provider:
    """An emulated service. `service` names its pipeline (auth audience, rate limits, error shape)."""

    service: ClassVar[str]
    authenticated: ClassVar[bool] = True

    def __init__(self, cloud: Cloud) -> None:
        self.cloud = cloud

    async def before(self, request: Request) -> None:
        """Runs before each of the provider's own-service operations; may raise the service's error."""

    def handlers(self) -> Iterator[tuple[RouteSpec, Handler]]:
        """(route, bound operation) in the order the class declares them, base classes first."""
        seen: dict[str, None] = {}
        for klass in reversed(type(self).__mro__):
            for name, member in vars(klass).items():
                if getattr(member, "_routes", None):
                    seen.setdefault(name)
        for name in seen:
            operation = getattr(self, name)
            for spec in operation._routes:
                yield (
                    spec,
                    functools.partial(operation, **dict(spec.bound)) if spec.bound else operation,
                )

    def register(self, router: Router) -> None:
        for spec, operation in self.handlers():
            service = spec.service or self.service
            authenticated = self.authenticated if spec.authenticated is None else spec.authenticated
            handler = self._with_before(operation) if service == self.service else operation
            router.add(
                spec.method,
                spec.pattern,
                handler,
                service=service,
                authenticated=authenticated,
            )

    def _with_before(self, operation: Handler) -> Handler:
        if type(self).before is Provider.before:
            return operation

        async def run(request: Request, **params: Any) -> Any:
            await self.before(request)
            return await operation(request, **params)

        return run
