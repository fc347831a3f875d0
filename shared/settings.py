"""Every setting Riposte reads, validated once at start with a message that names the bad one.

Each field is read from the environment variable RIPOSTE_<FIELD NAME IN CAPITALS>; lists are comma-separated.
Defaults for the limiters come from Microsoft's documented limits (Identity Protection 1 request/s per tenant, Log
Analytics 5 concurrent queries, Sentinel 75 incident or comment writes per 5 minutes)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class SettingsError(ValueError):
    pass


def env_name(field_name: str) -> str:
    return f"RIPOSTE_{field_name.upper()}"


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # --- intake ---
    max_body_bytes: int = Field(1_048_576, gt=0, description="Largest accepted body (Event Grid's 1 MiB event size)")
    max_entities: int = Field(500, gt=0, description="Most entities accepted in one incident")
    max_json_depth: int = Field(64, gt=0, description="Deepest JSON nesting accepted")
    max_events_per_delivery: int = Field(5000, gt=0, description="Most events in one Event Grid delivery")

    # --- where the Microsoft APIs are (the local stack points these at the emulated cloud) ---
    graph_endpoint: str = Field("https://graph.microsoft.com", description="Microsoft Graph base URL")
    arm_endpoint: str = Field("https://management.azure.com", description="Azure Resource Manager base URL")
    loganalytics_endpoint: str = Field("https://api.loganalytics.io", description="Log Analytics query API base URL")
    ca_bundle: str | None = Field(None, description="CA certificate file to trust (local stack only)")
    managed_identity_client_id: str | None = Field(None, description="Client id of a user-assigned managed identity")
    subscription_id: str | None = Field(None, description="Default subscription for ARM calls")
    workspace_id: str | None = Field(None, description="Log Analytics workspace GUID (customer id) for KQL")

    # --- guardrails ---
    protected_users: tuple[str, ...] = Field((), description="Object ids or UPNs automation must never act on")
    protected_groups: tuple[str, ...] = Field((), description="Group object ids whose members are protected")
    protected_resource_prefixes: tuple[str, ...] = Field((), description="ARM id prefixes that are protected")
    protected_resource_tags: tuple[str, ...] = Field(
        ("riposte-protected=true",), description="key=value tags that protect a resource"
    )
    destructive_actions_per_hour: int = Field(20, ge=0, description="Cap on destructive actions per hour")

    # --- network responders ---
    isolation_allowed_prefixes: tuple[str, ...] = Field(
        (), description="Management address prefixes still allowed in and out of an isolated VM"
    )
    block_ip_nsgs: tuple[str, ...] = Field((), description="ARM ids of the NSGs network.block_ip writes deny rules to")
    capture_storage_account_id: str | None = Field(None, description="ARM id of the storage account for captures")
    capture_default_seconds: int = Field(300, gt=0, description="Packet capture duration when a playbook names none")
    capture_max_seconds: int = Field(1800, gt=0, description="Longest packet capture allowed")
    capture_max_bytes: int = Field(104_857_600, gt=0, description="Most bytes one packet capture session may take")

    # --- limiters and retries ---
    identity_protection_rps: float = Field(1.0, gt=0, description="Identity Protection requests per second")
    loganalytics_concurrency: int = Field(5, gt=0, description="Concurrent Log Analytics queries")
    sentinel_writes_per_5min: int = Field(75, gt=0, description="Sentinel incident and comment writes per window")
    sentinel_write_window_seconds: float = Field(300.0, gt=0, description="The Sentinel write window (5 minutes)")
    max_retries: int = Field(4, ge=0, description="Retries of a throttled (429) or unavailable (503) call")
    retry_backoff_seconds: float = Field(1.0, gt=0, description="First backoff when the service sends no Retry-After")
    lro_poll_seconds: float = Field(
        2.0, gt=0, description="Poll interval of a long-running operation without Retry-After"
    )
    enrichment_timeout_seconds: float = Field(30.0, gt=0, description="Time limit of one enrichment")

    # --- the engine ---
    run_lease_seconds: float = Field(
        300.0, gt=0, description="How long a worker's claim on a run lasts before another worker may take it over"
    )

    # --- playbooks ---
    playbooks_dir: str | None = Field(None, description="Directory of playbook YAML files (default: the bundled ones)")

    # --- notifications ---
    notify_webhook_url: str | None = Field(None, description="Teams-compatible incoming webhook for notify.webhook")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        source = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name, info in cls.model_fields.items():
            raw = source.get(env_name(name))
            if raw is None or raw.strip() == "":
                continue
            if tuple in (getattr(info.annotation, "__origin__", None), *map(_origin, get_args(info.annotation))):
                values[name] = tuple(part.strip() for part in raw.split(",") if part.strip())
            else:
                values[name] = raw.strip()
        try:
            return cls(**values)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = str(error["loc"][0]) if error["loc"] else ""
            raise SettingsError(f"{env_name(field)}: {error['msg']} (got {values.get(field)!r}).") from None


def _origin(annotation: Any) -> Any:
    return getattr(annotation, "__origin__", None)


@cache
def get_settings() -> Settings:
    return Settings.from_env()
