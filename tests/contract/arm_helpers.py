"""Shared facts and helpers of the ARM contract tests (test_arm_*.py)."""

from __future__ import annotations

import json
from typing import Any

import httpx
from azure.core.exceptions import HttpResponseError
from azure.identity import DefaultAzureCredential

from tests.conftest import PUBLISHED

SUBSCRIPTION = "8c2b5f0e-3d4a-4b6c-9a1e-7f2d3c4b5a60"
TENANT_ID = "6f1d3c2e-5a4b-4c8d-9e7f-0a1b2c3d4e5f"
ARM_SCOPE = "https://management.azure.com/.default"
WORKSPACE_CUSTOMER_ID = "2b7e4c1d-9f3a-4e5b-8c6d-1a0f9e8d7c6b"
SUB = f"/subscriptions/{SUBSCRIPTION}"
VM_WEB = f"{SUB}/resourceGroups/rg-prod-web/providers/Microsoft.Compute/virtualMachines/vm-web-01"
STORAGE = f"{SUB}/resourceGroups/rg-soc/providers/Microsoft.Storage/storageAccounts/stcontosocaptures"
WORKSPACE = f"{SUB}/resourceGroups/rg-soc/providers/Microsoft.OperationalInsights/workspaces/law-sentinel"


def published(relative: str) -> dict[str, Any]:
    """A published REST example (tests/fixtures/published)."""
    loaded: dict[str, Any] = json.loads((PUBLISHED / relative).read_text(encoding="utf-8"))
    return loaded


def same_shape(actual: Any, example: Any, ignore: frozenset[str] = frozenset(), path: str = "") -> list[str]:
    """Where `actual` lacks a key of `example` or has another JSON type there (lists: first items compared).
    `ignore` holds dotted paths (e.g. "properties.availabilitySet") the example has but a realistic answer need not."""
    problems: list[str] = []
    if path in ignore:
        return problems
    if isinstance(example, dict):
        if not isinstance(actual, dict):
            return [f"{path or '<root>'}: expected an object, got {type(actual).__name__}"]
        for name, value in example.items():
            child = f"{path}.{name}" if path else name
            if child in ignore:
                continue
            if name not in actual:
                problems.append(f"{child}: missing")
            else:
                problems.extend(same_shape(actual[name], value, ignore, child))
    elif isinstance(example, list):
        if not isinstance(actual, list):
            return [f"{path}: expected a list, got {type(actual).__name__}"]
        if example and actual:
            problems.extend(same_shape(actual[0], example[0], ignore, f"{path}[]"))
    elif example is not None and actual is not None:
        numeric = (int, float)
        if isinstance(example, bool) or isinstance(actual, bool):
            if type(example) is not type(actual):
                problems.append(f"{path}: {type(actual).__name__} instead of {type(example).__name__}")
        elif not (isinstance(example, numeric) and isinstance(actual, numeric)) and type(example) is not type(actual):
            problems.append(f"{path}: {type(actual).__name__} instead of {type(example).__name__}")
    return problems


def arm_token() -> str:
    return DefaultAzureCredential().get_token(ARM_SCOPE).token


def arm_http(cloud: Any) -> httpx.Client:
    """A plain HTTP client with an ARM token, for what the SDKs hide (status codes, headers, raw bodies)."""
    return httpx.Client(
        base_url=cloud.url, verify=cloud.ca_path, headers={"Authorization": f"Bearer {arm_token()}"}, timeout=30
    )


def arm_settings(cloud: Any, **values: float) -> None:
    """Timing of long-running operations (reset with the tenant by the `cloud` fixture)."""
    cloud.admin.patch("/arm/settings", json=values).raise_for_status()


def fast_operations(cloud: Any) -> None:
    """Retry-After: 0, so the SDK polls at polling_interval (0 in these tests) instead of waiting 1 s per poll."""
    arm_settings(cloud, retryAfterSeconds=0)


def mgmt_options(cloud: Any) -> dict[str, Any]:
    return {"base_url": cloud.url, "connection_verify": cloud.ca_path, "polling_interval": 0}


def error_code(error: HttpResponseError) -> str | None:
    """The ARM error code the SDK parsed out of an error response."""
    return error.error.code if error.error is not None else None


def error_message(error: HttpResponseError) -> str:
    return str(error.error.message) if error.error is not None else ""
