"""The list of emulated service modules; each has register(router, cloud)."""

from __future__ import annotations

import importlib
from types import ModuleType

MODULES = [
    "local.cloud.admin",
    "local.cloud.graph",
    "local.cloud.arm_resources",
    "local.cloud.arm_compute",
    "local.cloud.arm_network",
    "local.cloud.arm_sentinel",
    "local.cloud.arm_authorization",
    "local.cloud.loganalytics",
    "local.cloud.oidc",
    "local.cloud.sink",
]


def all_modules() -> list[ModuleType]:
    found = []
    for name in MODULES:
        try:
            found.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a module that exists but is broken must fail loudly
                raise
    return found
