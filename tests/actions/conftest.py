"""Actions against the emulated cloud, through the real SDK clients built by shared.azure.clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from shared.actions.context import ActionContext, Ledger, MemoryLedger
from shared.azure.clients import AzureClients
from shared.settings import Settings
from tests.conftest import CloudHandle

SUBSCRIPTION = "8c2b5f0e-3d4a-4b6c-9a1e-7f2d3c4b5a60"
WORKSPACE_ID = "2b7e4c1d-9f3a-4e5b-8c6d-1a0f9e8d7c6b"
WORKSPACE = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-soc/providers/"
    "Microsoft.OperationalInsights/workspaces/law-sentinel"
)
ADELE = "1c9f2b8e-4a3d-4e6f-8b1c-2d3e4f5a6b01"
MEGAN = "1c9f2b8e-4a3d-4e6f-8b1c-2d3e4f5a6b02"
ALEX = "1c9f2b8e-4a3d-4e6f-8b1c-2d3e4f5a6b03"
LEE = "1c9f2b8e-4a3d-4e6f-8b1c-2d3e4f5a6b04"
BREAKGLASS = "1c9f2b8e-4a3d-4e6f-8b1c-2d3e4f5a6b05"
VM_WEB = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-prod-web/providers/Microsoft.Compute/virtualMachines/vm-web-01"
)
VM_DEV = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-dev/providers/Microsoft.Compute/virtualMachines/vm-dev-02"
NSG_PERIMETER = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-network/providers/Microsoft.Network/networkSecurityGroups/"
    "nsg-perimeter"
)
CAPTURE_STORAGE = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-soc/providers/Microsoft.Storage/storageAccounts/stcontosocaptures"
)


def cloud_settings(cloud: CloudHandle, **overrides: Any) -> Settings:
    """Settings a deployed Riposte would have, pointed at the emulated cloud. Tests override what they exercise."""
    values: dict[str, Any] = {
        "graph_endpoint": cloud.url,
        "arm_endpoint": cloud.url,
        "loganalytics_endpoint": cloud.url,
        "mde_endpoint": cloud.url,
        "ca_bundle": cloud.ca_path,
        "subscription_id": SUBSCRIPTION,
        "workspace_id": WORKSPACE_ID,
        "protected_users": (BREAKGLASS,),
        "isolation_allowed_prefixes": ("10.0.0.0/24",),
        "block_ip_nsgs": (NSG_PERIMETER,),
        "capture_storage_account_id": CAPTURE_STORAGE,
        "identity_protection_rps": 50.0,  # the limiter test sets the real 1/s
        "lro_poll_seconds": 0.05,
        "retry_backoff_seconds": 0.05,
    }
    values.update(overrides)
    return Settings(**values)


ContextFactory = Callable[..., ActionContext]


@pytest.fixture
async def make_context(cloud: CloudHandle) -> AsyncIterator[ContextFactory]:
    """Builds ActionContexts on fresh AzureClients; all are closed after the test."""
    opened: list[AzureClients] = []

    def factory(
        *, dry_run: bool = False, ledger: Ledger | None = None, run_id: str = "test-run", **overrides: Any
    ) -> ActionContext:
        settings = cloud_settings(cloud, **overrides)
        clients = AzureClients(settings)
        opened.append(clients)
        return ActionContext(
            settings=settings,
            azure=clients,
            ledger=ledger or MemoryLedger(),
            run_id=run_id,
            incident_id=None,
            dry_run=dry_run,
        )

    yield factory
    for clients in opened:
        await clients.close()
