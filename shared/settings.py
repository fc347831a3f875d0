"""Every setting Riposte reads, validated once at start with a message that names the bad one.

Each field is read from the environment variable RIPOSTE_<FIELD NAME IN CAPITALS>; lists are comma-separated.
Defaults for the limiters come from Microsoft's documented limits (Identity Protection 1 request/s per tenant, Log
Analytics 5 concurrent queries, Sentinel 75 incident or comment writes per 5 minutes)."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from functools import cache
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.armid import ArmId


class SettingsError(ValueError):
    """A setting with a bad value; `variable` names it (RIPOSTE_...)."""

    def __init__(self, message: str, variable: str = "") -> None:
        super().__init__(message)
        self.variable = variable


_GUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


PLATFORM_AUTH_FLAG = "WEBSITE_AUTH_ENABLED"  # App Service sets it to True when App Service Authentication is on
SECRET_SETTINGS = frozenset({"notify_webhook_url"})  # a Teams or Logic Apps webhook URL carries its own signature


def _is_id_of(value: str, resource_type: str) -> bool:
    try:
        ArmId.parse(value, resource_type)
    except ValueError:
        return False
    return True


def _items(value: str | tuple[str, ...] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else value


def env_name(field_name: str) -> str:
    return f"RIPOSTE_{field_name.upper()}"


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # --- intake ---
    max_body_bytes: int = Field(1_048_576, gt=0, description="Largest accepted body (Event Grid's 1 MiB event size)")
    max_entities: int = Field(500, gt=0, description="Most entities accepted in one incident")
    max_json_depth: int = Field(64, gt=0, description="Deepest JSON nesting accepted")
    max_events_per_delivery: int = Field(5000, gt=0, description="Most events in one Event Grid delivery")

    # --- who may call the analyst routes (shared/api/auth.py) ---
    auth_mode: Literal["entra", "function_key"] = Field(
        "entra",
        description="entra: analyst routes need the function key and an Entra ID identity holding a Riposte app "
        "role; function_key: the key alone (a development stack with no app registration)",
    )
    auth_tenant_id: str | None = Field(
        None, pattern=_GUID, description="Entra tenant id whose tokens analyst routes accept (the tid claim)"
    )
    auth_audience: tuple[str, ...] = Field(
        (),
        description="Accepted token audiences: the API app registration's client id (v2 tokens) and its Application "
        "ID URI (v1 tokens)",
    )
    auth_issuers: tuple[str, ...] = Field(
        (),
        description="Accepted token issuers (default: the tenant's v1 https://sts.windows.net/{tenant}/ and v2 "
        "https://login.microsoftonline.com/{tenant}/v2.0)",
    )
    auth_metadata_url: str | None = Field(
        None,
        pattern=r"^https://",
        description="OpenID Connect metadata whose jwks_uri publishes the signing keys (default: "
        "https://login.microsoftonline.com/{tenant}/v2.0/.well-known/openid-configuration)",
    )
    auth_algorithms: tuple[Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"], ...] = Field(
        ("RS256",), min_length=1, description="Token signature algorithms accepted (Entra signs with RS256)"
    )
    auth_clock_skew_seconds: int = Field(300, ge=0, le=600, description="Leeway on a token's exp and nbf")
    auth_keys_max_age_seconds: float = Field(
        43_200.0, gt=0, description="How long fetched signing keys are used before they are fetched again"
    )
    auth_keys_min_refresh_seconds: float = Field(
        300.0, ge=0, description="Least time between two key fetches caused by tokens naming an unknown key"
    )
    approver_group_cache_seconds: float = Field(
        60.0,
        ge=0,
        description="How long an approver's group memberships, read from Microsoft Graph, are reused: a removal from "
        "a playbook's approver group takes effect within this time",
    )
    trust_app_service_auth: bool = Field(
        False,
        description="Take the caller from X-MS-CLIENT-PRINCIPAL, set by App Service Authentication (which strips "
        "that header from outside requests). Refused at start unless the platform reports that authentication is "
        "on (WEBSITE_AUTH_ENABLED=True)",
    )

    # --- where the Microsoft APIs are (the local stack points these at the emulated cloud) ---
    graph_endpoint: str = Field("https://graph.microsoft.com", description="Microsoft Graph base URL")
    arm_endpoint: str = Field("https://management.azure.com", description="Azure Resource Manager base URL")
    loganalytics_endpoint: str = Field("https://api.loganalytics.io", description="Log Analytics query API base URL")
    mde_endpoint: str = Field(
        "https://api.security.microsoft.com", description="Microsoft Defender for Endpoint API base URL"
    )
    ca_bundle: str | None = Field(None, description="CA certificate file to trust (local stack only)")
    managed_identity_client_id: str | None = Field(None, description="Client id of a user-assigned managed identity")
    subscription_id: str | None = Field(None, description="Default subscription for ARM calls")
    workspace_id: str | None = Field(None, description="Log Analytics workspace GUID (customer id) for KQL")
    console_url: str | None = Field(
        None,
        pattern=r"^https?://[^\s#?]+/$",
        description="The console's address (https://<app>/api/console/): approval requests link to its run pages",
    )
    sentinel_workspace: str | None = Field(
        None,
        pattern=r"(?i)^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.OperationalInsights/workspaces/[^/]+$",
        description="ARM id of the Sentinel workspace, so a manual run can name an incident by its number",
    )

    # --- guardrails ---
    protected_users: tuple[str, ...] = Field((), description="Object ids or UPNs automation must never act on")
    protected_groups: tuple[str, ...] = Field((), description="Group object ids whose members are protected")
    protected_watchlist: str = Field(
        "",
        pattern=r"^([A-Za-z0-9][A-Za-z0-9_-]{0,63})?$",
        description="Alias of a Sentinel watchlist of accounts automation must never act on (UPN or object id as its "
        "search key); empty: none",
    )
    protected_resource_prefixes: tuple[str, ...] = Field((), description="ARM id prefixes that are protected")
    protected_resource_tags: tuple[str, ...] = Field(
        ("riposte-protected=true",), description="key=value tags that protect a resource"
    )
    destructive_actions_per_hour: int = Field(20, ge=0, description="Cap on destructive actions per hour")
    protected_ip_ranges: tuple[str, ...] = Field(
        (),
        description="Address prefixes Riposte never blocks (its own egress, management and partner ranges), besides "
        "private and reserved addresses, which it never blocks either",
    )

    # --- network responders ---
    isolation_allowed_prefixes: tuple[str, ...] = Field(
        (), description="Management address prefixes still allowed in and out of an isolated VM"
    )
    block_ip_nsgs: tuple[str, ...] = Field((), description="ARM ids of the NSGs network.block_ip writes deny rules to")
    blocked_ips_named_location_id: str | None = Field(
        None,
        description="Object id of the Conditional Access IP named location Riposte adds attackers' addresses to (a "
        "block policy of yours uses it); entra.block_ip_in_named_location edits this one and no other",
    )
    capture_storage_account_id: str | None = Field(None, description="ARM id of the storage account for captures")
    capture_default_seconds: int = Field(300, gt=0, description="Packet capture duration when a playbook names none")
    capture_max_seconds: int = Field(1800, gt=0, description="Longest packet capture allowed")
    capture_max_bytes: int = Field(104_857_600, gt=0, description="Most bytes one packet capture session may take")

    # --- limiters and retries ---
    identity_protection_rps: float = Field(
        0.8,
        gt=0,
        description="Identity Protection requests per second: the service allows 1 per tenant for all apps combined",
    )
    loganalytics_concurrency: int = Field(5, gt=0, description="Concurrent Log Analytics queries")
    mde_calls_per_minute: int = Field(
        95, gt=0, description="Defender for Endpoint machine and machine action calls per minute (the API allows 100)"
    )
    limiter: Literal["auto", "shared", "process"] = Field(
        "auto",
        description="Where the limiters keep their state: shared, in the app's storage (table RiposteLimits), so "
        "every scaled-out instance together stays within the tenant's limits; process, each instance on its own "
        "(N instances may send N times a limit); auto, shared whenever AzureWebJobsStorage is configured",
    )
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
        30.0,
        ge=1,
        description=(
            "How long a worker's claim on a run lasts unless renewed. The worker renews it every third of this while "
            "it works, and stops any step still running a sixth of it before the claim would lapse unrenewed; a "
            "killed worker's run resumes about this long after its last renewal"
        ),
    )

    replay_settle_seconds: float = Field(
        20.0,
        ge=0,
        description=(
            "How long after an interrupted attempt's intent a write it may still have in flight can land: a retry "
            "(or a rollback) that does not see the write yet looks again only after this, so it never writes twice"
        ),
    )

    # --- playbooks ---
    playbooks_dir: str | None = Field(None, description="Directory of playbook YAML files (default: the bundled ones)")

    # --- notifications ---
    notify_webhook_url: str | None = Field(None, description="Teams-compatible incoming webhook for notify.webhook")

    # --- checks of form, so a bad value fails at start rather than at the first action that needs it ---

    @field_validator("graph_endpoint", "arm_endpoint", "loganalytics_endpoint", "mde_endpoint", "notify_webhook_url")
    @classmethod
    def _absolute_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("https", "http") or not parts.hostname:
                raise ValueError("must be an absolute URL (https://host/...)")
        return value

    @field_validator(
        "managed_identity_client_id",
        "subscription_id",
        "workspace_id",
        "protected_groups",
        "blocked_ips_named_location_id",
    )
    @classmethod
    def _guids(cls, value: str | tuple[str, ...] | None) -> str | tuple[str, ...] | None:
        for item in _items(value):
            if not re.fullmatch(_GUID, item):
                raise ValueError(f"{item!r} is not a GUID")
        return value

    @field_validator("protected_users")
    @classmethod
    def _users(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if not (re.fullmatch(_GUID, item) or re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", item)):
                raise ValueError(f"{item!r} is neither an object id (GUID) nor a user principal name")
        return value

    @field_validator("protected_resource_prefixes")
    @classmethod
    def _arm_prefixes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if not item.lower().startswith("/subscriptions/"):
                raise ValueError(f"{item!r} is not an ARM id prefix (/subscriptions/...)")
        return value

    @field_validator("protected_resource_tags")
    @classmethod
    def _tags(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            key, equals, _ = item.partition("=")
            if not equals or not key.strip():
                raise ValueError(f"{item!r} is not key=value")
        return value

    @field_validator("isolation_allowed_prefixes", "protected_ip_ranges")
    @classmethod
    def _address_prefixes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an address prefix (10.0.0.0/24)") from None
        return value

    @field_validator("block_ip_nsgs")
    @classmethod
    def _nsg_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if not _is_id_of(item, "Microsoft.Network/networkSecurityGroups"):
                raise ValueError(f"{item!r} is not the ARM id of a network security group")
        return value

    @field_validator("capture_storage_account_id")
    @classmethod
    def _storage_account_id(cls, value: str | None) -> str | None:
        if value is not None and not _is_id_of(value, "Microsoft.Storage/storageAccounts"):
            raise ValueError("is not the ARM id of a storage account")
        return value

    @field_validator("ca_bundle")
    @classmethod
    def _file(cls, value: str | None) -> str | None:
        if value is not None and not os.path.isfile(value):
            raise ValueError(f"no such file: {value}")
        return value

    @field_validator("playbooks_dir")
    @classmethod
    def _directory(cls, value: str | None) -> str | None:
        if value is not None and not os.path.isdir(value):
            raise ValueError(f"no such directory: {value}")
        return value

    @model_validator(mode="after")
    def _capture_limits(self) -> Settings:
        if self.capture_default_seconds > self.capture_max_seconds:
            raise ValueError(
                f"{env_name('capture_default_seconds')} ({self.capture_default_seconds}) is longer than "
                f"{env_name('capture_max_seconds')} ({self.capture_max_seconds})"
            )
        return self

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        source = os.environ if env is None else env
        values: dict[str, Any] = {}
        raw_values: dict[str, str] = {}
        for name, info in cls.model_fields.items():
            raw = source.get(env_name(name))
            if raw is None or raw.strip() == "":
                continue
            raw_values[name] = raw
            if tuple in (getattr(info.annotation, "__origin__", None), *map(_origin, get_args(info.annotation))):
                values[name] = tuple(part.strip() for part in raw.split(",") if part.strip())
            else:
                values[name] = raw.strip()
        try:
            settings = cls(**values)
        except ValidationError as exc:
            error = exc.errors()[0]
            message = str(error["msg"]).removeprefix("Value error, ")
            if not error["loc"]:  # a check across settings: its message names them
                named = re.search(r"RIPOSTE_[A-Z0-9_]+", message)
                raise SettingsError(f"{message}.", named.group(0) if named else "") from None
            field = str(error["loc"][0])
            variable = env_name(field)
            got = "a value that is not shown (it is a secret)" if field in SECRET_SETTINGS else repr(raw_values[field])
            raise SettingsError(f"{variable}: {message} (got {got}).", variable) from None
        settings._check_platform(source)
        return settings

    def _check_platform(self, env: Mapping[str, str]) -> None:
        """Settings that are only safe when the platform says so. X-MS-CLIENT-PRINCIPAL is trustworthy only behind
        App Service Authentication, which strips it from outside requests; App Service sets WEBSITE_AUTH_ENABLED=True
        when that is on. Without it, anyone holding the function key could write the header and be anyone."""
        if self.trust_app_service_auth and env.get(PLATFORM_AUTH_FLAG, "").strip().lower() != "true":
            variable = env_name("trust_app_service_auth")
            raise SettingsError(
                f"{variable} is true but App Service Authentication is not enabled on this app ({PLATFORM_AUTH_FLAG} "
                f"is {env.get(PLATFORM_AUTH_FLAG)!r}, not 'True'): X-MS-CLIENT-PRINCIPAL could be forged by any "
                "caller. Turn App Service Authentication on (infra does, with trustAppServiceAuth) or set "
                f"{variable}=false.",
                variable,
            )


def _origin(annotation: Any) -> Any:
    return getattr(annotation, "__origin__", None)


@cache
def get_settings() -> Settings:
    return Settings.from_env()


# --- local.settings.json.example: generated from the fields above, so it documents every setting ------------------

PLATFORM_SETTINGS = {  # what the Functions runtime and the telemetry read, besides RIPOSTE_*
    "FUNCTIONS_WORKER_RUNTIME": ("python", "The Functions language worker"),
    "AzureWebJobsStorage": (
        "UseDevelopmentStorage=true",
        "Storage for the runs, ledger and dedup tables and the work queue (Azurite locally). In Azure, prefer the "
        "managed identity: AzureWebJobsStorage__accountName=<account> instead of a connection string",
    ),
    "APPLICATIONINSIGHTS_CONNECTION_STRING": (
        "",
        "Application Insights to export logs and traces to (azure-monitor-opentelemetry); empty: nothing exported",
    ),
}


def _example_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


def local_settings_example() -> str:
    """local.settings.json.example: every setting with its default in Values, and what it means in Descriptions
    (Core Tools reads Values and ignores the other keys; JSON has no comments)."""
    import json

    values = {name: default for name, (default, _) in PLATFORM_SETTINGS.items()}
    descriptions = {name: description for name, (_, description) in PLATFORM_SETTINGS.items()}
    for name, info in Settings.model_fields.items():
        values[env_name(name)] = _example_value(info.get_default(call_default_factory=True))
        kind = "comma-separated list" if _is_list(info.annotation) else ""
        descriptions[env_name(name)] = (info.description or "") + (f" ({kind})" if kind else "")
    document = {"IsEncrypted": False, "Values": values, "Descriptions": descriptions}
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _is_list(annotation: Any) -> bool:
    return tuple in (_origin(annotation), *map(_origin, get_args(annotation)))


if __name__ == "__main__":  # python -m shared.settings > local.settings.json.example
    print(local_settings_example(), end="")
