"""ARM core: subscriptions, resource groups, Log Analytics workspaces, storage accounts, the generic resource
listing, the api-version rule, operation status URLs, the timing settings, and the tenant round trip of the `arm:`
and `sentinel:` sections."""

from __future__ import annotations

from typing import Any

import pytest

from tests.contract.arm_helpers import (
    STORAGE,
    SUB,
    SUBSCRIPTION,
    TENANT_ID,
    WORKSPACE,
    WORKSPACE_CUSTOMER_ID,
    arm_http,
)

API = {"api-version": "2022-12-01"}


def get(cloud: Any, path: str, **params: str) -> Any:
    with arm_http(cloud) as http:
        return http.get(path, params={**API, **params})


def test_subscriptions(cloud):
    listed = get(cloud, "/subscriptions").json()
    assert listed["count"] == {"type": "Total", "value": 1}
    [subscription] = listed["value"]
    assert subscription["id"] == SUB
    assert subscription["subscriptionId"] == SUBSCRIPTION
    assert subscription["displayName"] == "Contoso Production"
    assert subscription["state"] == "Enabled"
    assert subscription["tenantId"] == TENANT_ID
    assert set(subscription["subscriptionPolicies"]) == {"locationPlacementId", "quotaId", "spendingLimit"}
    assert get(cloud, SUB).json() == subscription
    missing = get(cloud, "/subscriptions/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "SubscriptionNotFound"


def test_resource_groups(cloud):
    groups = get(cloud, f"{SUB}/resourcegroups").json()["value"]
    assert [g["name"] for g in groups] == ["rg-prod-web", "rg-dev", "rg-soc", "rg-network", "NetworkWatcherRG"]
    soc = get(cloud, f"{SUB}/resourceGroups/RG-SOC").json()
    assert soc == {
        "id": f"{SUB}/resourceGroups/rg-soc",
        "name": "rg-soc",
        "type": "Microsoft.Resources/resourceGroups",
        "location": "westeurope",
        "properties": {"provisioningState": "Succeeded"},
        "tags": {"environment": "production", "owner": "soc@contoso.com"},
    }
    missing = get(cloud, f"{SUB}/resourceGroups/rg-nope")
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {"code": "ResourceGroupNotFound", "message": "Resource group 'rg-nope' could not be found."}
    }


def test_log_analytics_workspace(cloud):
    workspace = get(cloud, WORKSPACE).json()
    assert workspace["name"] == "law-sentinel"
    assert workspace["type"] == "Microsoft.OperationalInsights/workspaces"
    assert workspace["location"] == "westeurope"
    assert workspace["properties"]["customerId"] == WORKSPACE_CUSTOMER_ID
    assert workspace["properties"]["provisioningState"] == "Succeeded"
    by_group = get(cloud, f"{SUB}/resourceGroups/rg-soc/providers/Microsoft.OperationalInsights/workspaces").json()
    by_subscription = get(cloud, f"{SUB}/providers/Microsoft.OperationalInsights/workspaces").json()
    assert [w["name"] for w in by_group["value"]] == [w["name"] for w in by_subscription["value"]] == ["law-sentinel"]
    missing = get(cloud, WORKSPACE.replace("law-sentinel", "law-other"))
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "ResourceNotFound"
    assert "Microsoft.OperationalInsights/workspaces/law-other" in missing.json()["error"]["message"]


def test_storage_account(cloud):
    account = get(cloud, STORAGE).json()
    assert account["kind"] == "StorageV2"
    assert account["properties"]["primaryEndpoints"]["blob"] == "https://stcontosocaptures.blob.core.windows.net/"


def test_generic_resource_listing_with_type_filter(cloud):
    everything = get(cloud, f"{SUB}/resources").json()["value"]
    assert len(everything) == 15
    assert {"stcontosocaptures", "stcontosostorefront"} <= {r["name"] for r in everything}  # captures, storage-anomaly
    assert set(everything[0]) <= {"id", "name", "type", "location", "tags", "kind", "sku"}
    vms = get(cloud, f"{SUB}/resources", **{"$filter": "resourceType eq 'Microsoft.Compute/virtualMachines'"}).json()
    assert sorted(v["name"] for v in vms["value"]) == ["vm-dev-02", "vm-jump-01", "vm-web-01"]
    in_group = get(cloud, f"{SUB}/resourceGroups/rg-dev/resources").json()["value"]
    assert sorted(r["name"] for r in in_group) == ["nic-dev-02a", "nic-dev-02b", "nsg-dev", "vm-dev-02"]


def test_api_version_is_required_but_any_value_is_accepted(cloud):
    with arm_http(cloud) as http:
        missing = http.get(WORKSPACE)
        ancient = http.get(WORKSPACE, params={"api-version": "2015-03-20"})
        future = http.get(WORKSPACE, params={"api-version": "2099-01-01-preview"})
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "MissingApiVersionParameter"
    assert ancient.status_code == future.status_code == 200


def test_unknown_operation_is_404(cloud):
    missing = get(cloud, f"{SUB}/providers/Microsoft.Network/locations/westeurope/operations/nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "OperationNotFound"


def test_timing_settings_are_adjustable_and_reset_with_the_tenant(cloud):
    assert cloud.admin.get("/arm/settings").json() == {
        "operationSeconds": 0.0,
        "retryAfterSeconds": 1,
        "abandonedOperationSeconds": 5.0,
    }
    changed = cloud.admin.patch("/arm/settings", json={"operationSeconds": 2, "retryAfterSeconds": 3})
    assert changed.json()["operationSeconds"] == 2.0 and changed.json()["retryAfterSeconds"] == 3
    for bad in ({"retryAfterSeconds": 0.5}, {"operationSeconds": -1}, {"bogus": 1}):
        assert cloud.admin.patch("/arm/settings", json=bad).status_code == 400
    cloud.reset()
    assert cloud.admin.get("/arm/settings").json()["retryAfterSeconds"] == 1


def test_tenant_round_trip_keeps_arm_and_sentinel_sections(cloud):
    before = cloud.tenant()
    nsg = next(r for r in before["arm"]["resources"] if r["name"] == "nsg-web")
    assert len(nsg["properties"]["defaultSecurityRules"]) == 6  # derived fields are in the live document
    vm = next(r for r in before["arm"]["resources"] if r["name"] == "vm-web-01")
    assert vm["properties"]["instanceView"]["statuses"][1]["code"] == "PowerState/running"
    assert cloud.admin.put("/tenant", json=before).status_code in (200, 204)
    after = cloud.tenant()
    assert after["arm"] == before["arm"]
    assert after["sentinel"] == before["sentinel"]


@pytest.mark.parametrize("seed_change", ["drop_derived_fields", "rename_nsg"])
def test_a_replaced_tenant_is_expanded_again(cloud, seed_change):
    doc = cloud.tenant()
    nsg = next(r for r in doc["arm"]["resources"] if r["name"] == "nsg-dev")
    if seed_change == "drop_derived_fields":
        for field in ("etag", "defaultSecurityRules", "networkInterfaces"):
            nsg.pop(field, None)
            nsg["properties"].pop(field, None)
    else:
        nsg["id"] = nsg["id"].replace("nsg-dev", "nsg-dev-renamed")
        nsg.pop("name")
    assert cloud.admin.put("/tenant", json=doc).status_code in (200, 204)
    name = "nsg-dev" if seed_change == "drop_derived_fields" else "nsg-dev-renamed"
    path = f"{SUB}/resourceGroups/rg-dev/providers/Microsoft.Network/networkSecurityGroups/{name}"
    served = get(cloud, path).json()
    assert served["name"] == name
    assert len(served["properties"]["defaultSecurityRules"]) == 6
    assert served["etag"].startswith('W/"')
