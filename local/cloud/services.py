"""The emulated services, in the order their routes are matched: one provider class each."""

from __future__ import annotations

import importlib
from typing import Any

from local.cloud.router import Router
from local.cloud.state import Cloud

PROVIDERS = [
    "local.cloud.identity:IdentityProvider",
    "local.cloud.admin",
    "local.cloud.graph:GraphProvider",
    "local.cloud.arm_resources:ResourcesProvider",
    "local.cloud.arm_compute:ComputeProvider",
    "local.cloud.arm_network:NetworkProvider",
    "local.cloud.arm_sentinel:SentinelProvider",
    "local.cloud.arm_authorization:AuthorizationProvider",
    "local.cloud.loganalytics",
    "local.cloud.oidc",
    "local.cloud.sink",
]


class _ModuleRoutes:
    """A service module not yet a provider class: its register(router, cloud)."""

    def __init__(self, module: Any, cloud: Cloud) -> None:
        self.module = module
        self.cloud = cloud

    def register(self, router: Router) -> None:
        self.module.register(router, self.cloud)


def providers(cloud: Cloud) -> list[Any]:
    found: list[Any] = []
    for entry in PROVIDERS:
        module_name, _, class_name = entry.partition(":")
        module = importlib.import_module(module_name)
        found.append(getattr(module, class_name)(cloud) if class_name else _ModuleRoutes(module, cloud))
    return found
