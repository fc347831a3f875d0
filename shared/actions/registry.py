"""The action registry. `@enricher` and `@responder` only attach metadata; `catalogue()` finds them.

Modules under shared/actions/ declare actions; nothing registers itself at import time, so importing one action module
never imports another, and the catalogue (GET /api/playbooks, docs/permissions.md) is built from the metadata."""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

from shared.actions.model import Permission

ATTRIBUTE = "__riposte_action__"
_NAME = re.compile(r"^[a-z]+\.[a-z]+(_[a-z]+)+$")
T = TypeVar("T")


@dataclass(frozen=True)
class ActionSpec:
    name: str  # <provider>.<verb>_<noun>
    kind: Literal["enrich", "respond"]
    summary: str
    params: type[BaseModel]
    permissions: tuple[Permission, ...]
    target: str | None = None  # the entity kind it takes: Account, Host, Ip, Incident
    reversible: bool = False
    destructive: bool = False
    undo_hint: str = ""  # how an analyst undoes it by hand when Riposte cannot

    @property
    def provider(self) -> str:
        return self.name.split(".", 1)[0]


def _attach(spec: ActionSpec) -> Callable[[T], T]:
    if not _NAME.match(spec.name):
        raise ValueError(f"action name {spec.name!r} must look like <provider>.<verb>_<noun>")

    def decorate(obj: T) -> T:
        setattr(obj, ATTRIBUTE, spec)
        return obj

    return decorate


def enricher(
    name: str, *, summary: str, params: type[BaseModel], permissions: tuple[Permission, ...], target: str | None = None
) -> Callable[[T], T]:
    return _attach(ActionSpec(name, "enrich", summary, params, permissions, target))


def responder(
    name: str,
    *,
    summary: str,
    params: type[BaseModel],
    permissions: tuple[Permission, ...],
    target: str | None = None,
    reversible: bool,
    destructive: bool,
    undo_hint: str = "",
) -> Callable[[T], T]:
    return _attach(
        ActionSpec(name, "respond", summary, params, permissions, target, reversible, destructive, undo_hint)
    )


@dataclass(frozen=True)
class Registered:
    spec: ActionSpec
    implementation: Any  # an enricher function, or a responder class


@cache
def catalogue() -> dict[str, Registered]:
    """Every action in shared/actions/*, by name. Imports the action modules (not the SDKs: adapters are lazy)."""
    import shared.actions as package

    found: dict[str, Registered] = {}
    for module_info in pkgutil.iter_modules(package.__path__):
        if module_info.name in ("model", "registry", "context", "executor", "permissions"):
            continue
        module = importlib.import_module(f"{package.__name__}.{module_info.name}")
        for value in vars(module).values():
            spec = getattr(value, ATTRIBUTE, None)
            if isinstance(spec, ActionSpec) and getattr(value, "__module__", "") == module.__name__:
                if spec.name in found:
                    raise ValueError(f"action {spec.name} is declared twice")
                found[spec.name] = Registered(spec, value)
    return dict(sorted(found.items()))


def get(name: str) -> Registered:
    try:
        return catalogue()[name]
    except KeyError:
        raise KeyError(f"no action named {name!r}") from None
