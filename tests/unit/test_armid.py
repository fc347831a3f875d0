"""shared.armid: the one ARM id parser (pure, so intake and settings use it as well as the adapters)."""

import pytest

from shared.armid import ArmId, resource_id, same_id, subscription_of

WORKSPACE = "/subscriptions/s1/resourceGroups/rg-sec/providers/Microsoft.OperationalInsights/workspaces/ws1"
INCIDENT = f"{WORKSPACE}/providers/Microsoft.SecurityInsights/incidents/abc"
SUBNET = "/subscriptions/s1/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/vnet/subnets/default"


def test_a_nested_resource_keeps_its_types_and_its_parent():
    subnet = ArmId.parse(SUBNET, "microsoft.network/VIRTUALNETWORKS/subnets")
    assert (subnet.subscription, subnet.resource_group, subnet.name) == ("s1", "rg-net", "default")
    assert subnet.type == "Microsoft.Network/virtualNetworks/subnets"
    assert str(subnet.parent) == SUBNET.rsplit("/subnets/", 1)[0]
    assert str(subnet.parent.child("subnets", "default")) == SUBNET


def test_an_extension_resource_has_the_type_arm_gives_it_and_the_resource_it_extends_as_scope():
    incident = ArmId.parse(INCIDENT.upper().replace("/SUBSCRIPTIONS/", "/subscriptions/"))
    assert incident.type.lower() == "microsoft.securityinsights/incidents"
    assert incident.name == "ABC" and incident.same(INCIDENT)
    assert incident.scope is not None and incident.scope.same(WORKSPACE)
    assert str(ArmId.parse(INCIDENT + "/")) == INCIDENT


def test_within_finds_the_parent_or_extended_resource_of_a_type():
    incident = ArmId.parse(f"{INCIDENT}/comments/c1")
    workspace = incident.within("Microsoft.OperationalInsights/workspaces")
    assert workspace is not None and str(workspace) == WORKSPACE
    assert str(incident.within("microsoft.securityinsights/incidents")) == INCIDENT
    assert ArmId.parse(SUBNET).within("Microsoft.OperationalInsights/workspaces") is None


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "vm-web-01",
        "/subscriptions/s1/resourceGroups/rg",
        f"{SUBNET}/extra",
        f"{WORKSPACE}/providers/Microsoft.SecurityInsights",
        "/subscriptions/s1/resourceGroups/rg/providers/providers/Microsoft.X/things/t",
        SUBNET.replace("default", ".."),
        SUBNET.replace("default", "de fault"),
    ],
)
def test_what_is_not_a_resource_id_is_refused_naming_it(bad):
    with pytest.raises(ValueError, match="is not an Azure resource id"):
        ArmId.parse(bad)


def test_a_resource_of_another_type_is_refused_naming_both_types():
    with pytest.raises(ValueError, match=r"is a Microsoft\.Network/virtualNetworks/subnets, not a"):
        ArmId.parse(SUBNET, "Microsoft.Compute/virtualMachines")


def test_helpers_build_and_compare_ids_case_insensitively():
    nsg = resource_id("s1", "rg", "Microsoft.Network/networkSecurityGroups", "nsg1")
    assert str(nsg) == "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/nsg1"
    assert same_id(str(nsg).upper() + "/", str(nsg)) and not same_id(None, str(nsg))
    assert subscription_of("/subscriptions/S1/providers/Microsoft.Security/locations/l/alerts/a") == "S1"
    assert subscription_of(SUBNET) == "s1"
    assert subscription_of("/tenants/t1") is None and subscription_of("subscriptions") is None
