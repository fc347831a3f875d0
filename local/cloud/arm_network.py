"""Microsoft.Network: network security groups and their rules, network interfaces, public IP addresses, network
watchers and packet captures, as the real resource provider answers them.

Every write is a long-running operation that holds a lock on the NSG (or NIC, or capture) it changes: while it is
in progress, another write to the same NSG or one of its rules gets 429 RetryableError (detail code
RetryableErrorDueToAnotherOperation) with Retry-After, which is what makes parallel rule writes fail against the
real provider. All sub-resources of an NSG share its etag (W/"guid"), which changes on each write and again when
the write completes."""

from __future__ import annotations

import copy
import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from local.cloud import arm_resources as arm
from local.cloud.arm_resources import ArmProvider, Json
from local.cloud.errors import ArmError
from local.cloud.provider import route

NAMESPACE = "Microsoft.Network"
NSG_TYPE = "Microsoft.Network/networkSecurityGroups"
RULE_TYPE = "Microsoft.Network/networkSecurityGroups/securityRules"
DEFAULT_RULE_TYPE = "Microsoft.Network/networkSecurityGroups/defaultSecurityRules"
NIC_TYPE = "Microsoft.Network/networkInterfaces"
IP_CONFIG_TYPE = "Microsoft.Network/networkInterfaces/ipConfigurations"
PUBLIC_IP_TYPE = "Microsoft.Network/publicIPAddresses"
WATCHER_TYPE = "Microsoft.Network/networkWatchers"
CAPTURE_TYPE = "Microsoft.Network/networkWatchers/packetCaptures"
VM_TYPE = "Microsoft.Compute/virtualMachines"

MIN_PRIORITY, MAX_PRIORITY = 100, 4096
MAX_CAPTURE_SECONDS = 18000
DEFAULT_CAPTURE_BYTES = 1073741824

PROTOCOLS = {p.lower(): p for p in ("Tcp", "Udp", "Icmp", "Esp", "Ah", "*")}
ACCESSES = {a.lower(): a for a in ("Allow", "Deny")}
DIRECTIONS = {d.lower(): d for d in ("Inbound", "Outbound")}

# (name, description, source, destination, access, priority, direction): the six rules every NSG has.
DEFAULT_RULES = (
    (
        "AllowVnetInBound",
        "Allow inbound traffic from all VMs in VNET",
        "VirtualNetwork",
        "VirtualNetwork",
        "Allow",
        65000,
        "Inbound",
    ),
    (
        "AllowAzureLoadBalancerInBound",
        "Allow inbound traffic from azure load balancer",
        "AzureLoadBalancer",
        "*",
        "Allow",
        65001,
        "Inbound",
    ),
    ("DenyAllInBound", "Deny all inbound traffic", "*", "*", "Deny", 65500, "Inbound"),
    (
        "AllowVnetOutBound",
        "Allow outbound traffic from all VMs to all VMs in VNET",
        "VirtualNetwork",
        "VirtualNetwork",
        "Allow",
        65000,
        "Outbound",
    ),
    (
        "AllowInternetOutBound",
        "Allow outbound traffic from all VMs to Internet",
        "*",
        "Internet",
        "Allow",
        65001,
        "Outbound",
    ),
    (
        "DenyAllOutBound",
        "Deny all outbound traffic",
        "*",
        "*",
        "Deny",
        65500,
        "Outbound",
    ),
)

# Properties of a rule the client sets; the rest (provisioningState) belongs to the provider.
RULE_FIELDS = (
    "description", "protocol", "sourcePortRange", "destinationPortRange", "sourceAddressPrefix",
    "destinationAddressPrefix", "access", "priority", "direction", "sourcePortRanges", "destinationPortRanges",
    "sourceAddressPrefixes", "destinationAddressPrefixes", "sourceApplicationSecurityGroups",
    "destinationApplicationSecurityGroups",
)  # fmt: skip
RULE_LIST_FIELDS = (
    "sourcePortRanges",
    "destinationPortRanges",
    "sourceAddressPrefixes",
    "destinationAddressPrefixes",
)

NIC_CLIENT_FIELDS = (
    "networkSecurityGroup", "dnsSettings", "enableAcceleratedNetworking", "enableIPForwarding",
    "disableTcpStateTracking", "auxiliaryMode", "auxiliarySku", "nicType", "migrationPhase",
)  # fmt: skip
IP_CONFIG_CLIENT_FIELDS = (
    "privateIPAddress", "privateIPAllocationMethod", "privateIPAddressVersion", "privateIPAddressPrefixLength",
    "subnet", "publicIPAddress", "primary", "applicationSecurityGroups", "loadBalancerBackendAddressPools",
)  # fmt: skip


def deterministic_guid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(p.lower() for p in parts)))


def bad_format(message: str) -> ArmError:
    """Microsoft.Network's answer to a body it cannot use."""
    return ArmError(
        400,
        "InvalidRequestFormat",
        "Cannot parse the request.",
        details=[{"code": "InvalidJsonPropertyValue", "message": message}],
    )


def invalid_reference(referenced: str, user: str) -> ArmError:
    return ArmError(
        400,
        "InvalidResourceReference",
        f"Resource {referenced} referenced by resource {user} was not found. Please make sure that the referenced "
        "resource exists, and that both resources are in the same region.",
    )


# --------------------------------------------------------------------------------------------------------------------
# security rules


def default_security_rules(nsg_id: str, etag: str, state: str = "Succeeded") -> list[Json]:
    return [
        {
            "name": name,
            "id": f"{nsg_id}/defaultSecurityRules/{name}",
            "etag": etag,
            "type": DEFAULT_RULE_TYPE,
            "properties": {
                "provisioningState": state,
                "description": description,
                "protocol": "*",
                "sourcePortRange": "*",
                "destinationPortRange": "*",
                "sourceAddressPrefix": source,
                "destinationAddressPrefix": destination,
                "access": access,
                "priority": priority,
                "direction": direction,
                "sourcePortRanges": [],
                "destinationPortRanges": [],
                "sourceAddressPrefixes": [],
                "destinationAddressPrefixes": [],
            },
        }
        for name, description, source, destination, access, priority, direction in DEFAULT_RULES
    ]


def normalize_rule(name: str, properties: Json, nsg_id: str, etag: str, state: str) -> Json:
    """A rule as the provider stores and answers it (ids, type, etag, empty list fields)."""
    props: Json = {"provisioningState": state}
    for field_name in RULE_FIELDS:
        if properties.get(field_name) is not None:
            props[field_name] = copy.deepcopy(properties[field_name])
    for field_name in RULE_LIST_FIELDS:
        props.setdefault(field_name, [])
    for field_name, table in (
        ("protocol", PROTOCOLS),
        ("access", ACCESSES),
        ("direction", DIRECTIONS),
    ):
        if isinstance(props.get(field_name), str):
            props[field_name] = table.get(props[field_name].lower(), props[field_name])
    return {
        "name": name,
        "id": f"{nsg_id}/securityRules/{name}",
        "etag": etag,
        "type": RULE_TYPE,
        "properties": props,
    }


def validate_rule(name: str, properties: Any) -> None:
    if not name:
        raise bad_format("Every security rule needs a name.")
    if not isinstance(properties, dict):
        raise bad_format(f"Security rule {name} has no properties.")
    for field_name, table in (
        ("protocol", PROTOCOLS),
        ("access", ACCESSES),
        ("direction", DIRECTIONS),
    ):
        value = properties.get(field_name)
        if not isinstance(value, str) or value.lower() not in table:
            raise bad_format(
                f"Security rule {name} has invalid {field_name[0].upper() + field_name[1:]}. Value provided: {value}. "
                f"Allowed values: {', '.join(table.values())}."
            )
    priority = properties.get("priority")
    if isinstance(priority, bool) or not isinstance(priority, int) or not MIN_PRIORITY <= priority <= MAX_PRIORITY:
        raise ArmError(
            400,
            "SecurityRuleInvalidPriority",
            f"Security rule has invalid Priority. Value provided: {priority} "
            f"Allowed range {MIN_PRIORITY}-{MAX_PRIORITY}.",
        )
    for side in ("source", "destination"):
        if not (
            properties.get(f"{side}AddressPrefix")
            or properties.get(f"{side}AddressPrefixes")
            or properties.get(f"{side}ApplicationSecurityGroups")
        ):
            raise bad_format(
                f"Security rule {name} needs {side}AddressPrefix, {side}AddressPrefixes "
                f"or {side}ApplicationSecurityGroups."
            )
        if not (properties.get(f"{side}PortRange") or properties.get(f"{side}PortRanges")):
            raise bad_format(f"Security rule {name} needs {side}PortRange or {side}PortRanges.")


def check_conflicts(rules: list[Json]) -> None:
    """Unique priority per direction, and unique names."""
    seen: dict[tuple[str, int], str] = {}
    names: set[str] = set()
    for rule in rules:
        lowered = rule["name"].lower()
        if lowered in names:
            raise bad_format(f"Security rule name {rule['name']} is used more than once.")
        names.add(lowered)
        slot = (
            str(rule["properties"]["direction"]).lower(),
            int(rule["properties"]["priority"]),
        )
        if slot in seen:
            raise ArmError(
                400,
                "SecurityRuleConflict",
                f"Security rule {rule['name']} conflicts with rule {seen[slot]}. Rules cannot have the same Priority "
                "and Direction. To learn more, see aka.ms/nsgrules.",
            )
        seen[slot] = rule["name"]


def stamp_nsg(nsg: Json, state: str, etag: str | None = None, only: Json | None = None) -> None:
    """One etag for the NSG and every rule in it, as the provider reports them; the provisioning state of the NSG
    and of the rules being written (`only`: a single rule; None: all of them)."""
    etag = etag or arm.weak_etag()
    nsg["etag"] = etag
    props = nsg.setdefault("properties", {})
    props["provisioningState"] = state
    for rule in [
        *props.get("securityRules", []),
        *props.get("defaultSecurityRules", []),
    ]:
        rule["etag"] = etag
        if only is None or rule is only:
            rule.setdefault("properties", {})["provisioningState"] = state


def find_rule(nsg: Json, name: str, collection: str = "securityRules") -> Json | None:
    return next(
        (r for r in nsg.get("properties", {}).get(collection, []) if r["name"].lower() == name.lower()),
        None,
    )


def expand_nsg(nsg: Json) -> None:
    """Fills what a seed may omit: etag, provisioning state, rule ids and shapes, the six default rules."""
    etag = nsg.get("etag") or f'W/"{deterministic_guid(nsg["id"], "etag")}"'
    props = nsg.setdefault("properties", {})
    props.setdefault("resourceGuid", deterministic_guid(nsg["id"], "resourceGuid"))
    props["securityRules"] = [
        normalize_rule(rule["name"], rule.get("properties") or {}, nsg["id"], etag, "Succeeded")
        for rule in props.get("securityRules") or []
    ]
    if not props.get("defaultSecurityRules"):
        props["defaultSecurityRules"] = default_security_rules(nsg["id"], etag)
    props.setdefault("networkInterfaces", [])
    stamp_nsg(nsg, props.get("provisioningState") or "Succeeded", etag)


# --------------------------------------------------------------------------------------------------------------------
# network interfaces and public IPs


def expand_nic(nic: Json) -> None:
    nic.setdefault("etag", f'W/"{deterministic_guid(nic["id"], "etag")}"')
    props = nic.setdefault("properties", {})
    props.setdefault("provisioningState", "Succeeded")
    props.setdefault("resourceGuid", deterministic_guid(nic["id"], "resourceGuid"))
    configs = props.setdefault("ipConfigurations", [])
    for index, config in enumerate(configs):
        config.setdefault("name", f"ipconfig{index + 1}")
        config["id"] = f"{nic['id']}/ipConfigurations/{config['name']}"
        config["etag"] = nic["etag"]
        config["type"] = IP_CONFIG_TYPE
        cprops = config.setdefault("properties", {})
        cprops.setdefault("provisioningState", "Succeeded")
        cprops.setdefault("privateIPAllocationMethod", "Dynamic")
        cprops.setdefault("privateIPAddressVersion", "IPv4")
        cprops.setdefault("primary", index == 0)
    mac = deterministic_guid(nic["id"], "mac").replace("-", "")[:12].upper()
    props.setdefault("macAddress", "-".join(mac[i : i + 2] for i in range(0, 12, 2)))
    suffix = deterministic_guid(nic["id"], "dns").replace("-", "")[:26]
    dns = props.setdefault("dnsSettings", {})
    dns.setdefault("dnsServers", [])
    dns.setdefault("appliedDnsServers", [])
    dns.setdefault("internalDomainNameSuffix", f"{suffix}.ax.internal.cloudapp.net")
    props.setdefault("enableAcceleratedNetworking", False)
    props.setdefault("enableIPForwarding", False)
    props.setdefault("primary", True)
    props.setdefault("vnetEncryptionSupported", False)
    props.setdefault("nicType", "Standard")


def expand_public_ip(address: Json) -> None:
    address.setdefault("etag", f'W/"{deterministic_guid(address["id"], "etag")}"')
    address.setdefault("sku", {"name": "Standard", "tier": "Regional"})
    props = address.setdefault("properties", {})
    props.setdefault("provisioningState", "Succeeded")
    props.setdefault("resourceGuid", deterministic_guid(address["id"], "resourceGuid"))
    props.setdefault("publicIPAddressVersion", "IPv4")
    props.setdefault("publicIPAllocationMethod", "Static")
    props.setdefault("idleTimeoutInMinutes", 4)
    props.setdefault("ipTags", [])


def link_network(resources: list[Json]) -> None:
    """Back-references the provider maintains: NSG.networkInterfaces and publicIP.ipConfiguration from the NICs."""
    by_key = {arm.key(r["id"]): r for r in resources if r.get("id")}
    for resource in resources:
        if str(resource.get("type", "")).lower() == NSG_TYPE.lower():
            resource.setdefault("properties", {})["networkInterfaces"] = []
    for nic in resources:
        if str(nic.get("type", "")).lower() != NIC_TYPE.lower():
            continue
        nic_props = nic.get("properties", {})
        nsg = by_key.get(arm.key((nic_props.get("networkSecurityGroup") or {}).get("id", "")))
        if nsg is not None:
            nsg["properties"]["networkInterfaces"].append({"id": nic["id"]})
        for config in nic_props.get("ipConfigurations", []):
            address = by_key.get(arm.key(((config.get("properties") or {}).get("publicIPAddress") or {}).get("id", "")))
            if address is not None:
                address.setdefault("properties", {})["ipConfiguration"] = {"id": config["id"]}


def set_nsg_association(store: arm.ArmStore, nic: Json, old_nsg_id: str | None, new_nsg_id: str | None) -> None:
    if old_nsg_id and not arm.same_id(old_nsg_id, new_nsg_id):
        old = store.get(old_nsg_id, NSG_TYPE)
        if old is not None:
            refs = old["properties"].setdefault("networkInterfaces", [])
            old["properties"]["networkInterfaces"] = [r for r in refs if not arm.same_id(r.get("id"), nic["id"])]
    if new_nsg_id:
        new = store.get(new_nsg_id, NSG_TYPE)
        if new is not None:
            refs = new["properties"].setdefault("networkInterfaces", [])
            if not any(arm.same_id(r.get("id"), nic["id"]) for r in refs):
                refs.append({"id": nic["id"]})


# --------------------------------------------------------------------------------------------------------------------
# packet captures


def expand_capture(capture: Json) -> None:
    capture.setdefault("etag", f'W/"{deterministic_guid(capture["id"], "etag")}"')
    props = capture.setdefault("properties", {})
    props.setdefault("provisioningState", "Succeeded")
    props.setdefault("bytesToCapturePerPacket", 0)
    props.setdefault("totalBytesPerSession", DEFAULT_CAPTURE_BYTES)
    props.setdefault("timeLimitInSeconds", MAX_CAPTURE_SECONDS)
    props.setdefault("filters", [])
    status = capture.setdefault("queryStatus", {})
    status.setdefault("captureStartTime", arm.utc_now())
    status.setdefault("packetCaptureStatus", "Running")
    status.setdefault("stopReason", "")
    status.setdefault("packetCaptureError", [])


def capture_status(capture: Json) -> Json:
    """Moves a running capture to Stopped once its time limit has passed (wall clock)."""
    status: Json = capture.setdefault("queryStatus", {})
    if status.get("packetCaptureStatus") == "Running":
        limit = int(capture.get("properties", {}).get("timeLimitInSeconds") or 0)
        started = arm.parse_time(status.get("captureStartTime"))
        if limit and started is not None and time.time() >= started + limit:
            status["packetCaptureStatus"] = "Stopped"
            status["stopReason"] = "TimeExceeded"
    return status


def render_capture(capture: Json) -> Json:
    body = arm.render(capture)
    body.pop("type", None)  # PacketCaptureResult has no type
    return body


def storage_path(storage_id: str, target_id: str, name: str) -> str:
    account = storage_id.rstrip("/").split("/")[-1].lower()
    return f"https://{account}.blob.core.windows.net/network-watcher-logs/{target_id.strip('/').lower()}/{name}.cap"


def vm_power_state(vm: Json) -> str:
    statuses = (vm.get("properties", {}).get("instanceView") or {}).get("statuses", [])
    return next(
        (s["code"].split("/", 1)[1] for s in statuses if str(s.get("code", "")).startswith("PowerState/")),
        "running",
    )


# --------------------------------------------------------------------------------------------------------------------
# effective security rules


def _effective_range(single: str | None, many: list[str] | None) -> list[str]:
    values = list(many or []) or [single or "*"]
    result = []
    for value in values:
        if value == "*":
            result.append("0-65535")
        elif "-" in value:
            result.append(value)
        else:
            result.append(f"{value}-{value}")
    return result


def effective_rules(nsg: Json) -> list[Json]:
    rules = []
    props = nsg.get("properties", {})
    for collection in ("securityRules", "defaultSecurityRules"):
        for rule in props.get(collection, []):
            p = rule["properties"]
            source_ports = _effective_range(p.get("sourcePortRange"), p.get("sourcePortRanges"))
            destination_ports = _effective_range(p.get("destinationPortRange"), p.get("destinationPortRanges"))
            sources = p.get("sourceAddressPrefixes") or [p.get("sourceAddressPrefix", "*")]
            destinations = p.get("destinationAddressPrefixes") or [p.get("destinationAddressPrefix", "*")]
            rules.append(
                {
                    "name": f"{collection}/{rule['name']}",
                    "protocol": "All" if p.get("protocol") == "*" else p.get("protocol"),
                    "sourcePortRange": source_ports[0],
                    "destinationPortRange": destination_ports[0],
                    "sourcePortRanges": source_ports,
                    "destinationPortRanges": destination_ports,
                    "sourceAddressPrefix": "0.0.0.0/0" if sources[0] == "*" else sources[0],
                    "destinationAddressPrefix": "0.0.0.0/0" if destinations[0] == "*" else destinations[0],
                    "sourceAddressPrefixes": ["0.0.0.0/0" if s == "*" else s for s in sources],
                    "destinationAddressPrefixes": ["0.0.0.0/0" if d == "*" else d for d in destinations],
                    "expandedSourceAddressPrefix": [],
                    "expandedDestinationAddressPrefix": [],
                    "access": p.get("access"),
                    "priority": p.get("priority"),
                    "direction": p.get("direction"),
                }
            )
    return rules


# --------------------------------------------------------------------------------------------------------------------
# routes


GROUP = "/subscriptions/{subscription}/resourcegroups/{group}/providers/Microsoft.Network"
NSG = GROUP + "/networkSecurityGroups/{nsg}"
NIC = GROUP + "/networkInterfaces/{nic}"
CAPTURES = GROUP + "/networkWatchers/{watcher}/packetCaptures"
CAPTURE = CAPTURES + "/{capture}"
SUBSCRIPTION = "/subscriptions/{subscription}/providers/Microsoft.Network"
# The server-owned properties of a NIC a PUT keeps (the client cannot set them).
NIC_SERVER_FIELDS = (
    "virtualMachine", "macAddress", "resourceGuid", "primary", "vnetEncryptionSupported", "hostedWorkloads",
    "tapConfigurations",
)  # fmt: skip


class NetworkProvider(ArmProvider):
    namespace = NAMESPACE

    # ---- every resource type: GET, PATCH tags, the listings ----------------------------------------------------

    @route(
        "GET",
        GROUP + "/networkSecurityGroups/{nsg}",
        resource_type=NSG_TYPE,
        parameter="nsg",
    )
    @route(
        "GET",
        GROUP + "/networkInterfaces/{nic}",
        resource_type=NIC_TYPE,
        parameter="nic",
    )
    @route(
        "GET",
        GROUP + "/publicIPAddresses/{address}",
        resource_type=PUBLIC_IP_TYPE,
        parameter="address",
    )
    @route(
        "GET",
        GROUP + "/networkWatchers/{watcher}",
        resource_type=WATCHER_TYPE,
        parameter="watcher",
    )
    async def get_resource(
        self,
        request: Request,
        subscription: str,
        group: str,
        resource_type: str,
        parameter: str,
        **names: str,
    ) -> Response:
        found = self.find(subscription, group, resource_type, names[parameter])
        self.operations.observe_resource(found["id"])
        return JSONResponse(arm.render(found))

    @route(
        "PATCH",
        GROUP + "/networkSecurityGroups/{nsg}",
        resource_type=NSG_TYPE,
        parameter="nsg",
    )
    @route(
        "PATCH",
        GROUP + "/networkInterfaces/{nic}",
        resource_type=NIC_TYPE,
        parameter="nic",
    )
    @route(
        "PATCH",
        GROUP + "/publicIPAddresses/{address}",
        resource_type=PUBLIC_IP_TYPE,
        parameter="address",
    )
    async def update_tags(
        self,
        request: Request,
        subscription: str,
        group: str,
        resource_type: str,
        parameter: str,
        **names: str,
    ) -> Response:
        """PATCH {"tags": {...}}: synchronous on Microsoft.Network, a new etag, no operation."""
        found = self.find(subscription, group, resource_type, names[parameter])
        body = await arm.read_json(request)
        self.not_locked(found["id"])
        if not isinstance(body.get("tags"), dict):
            raise bad_format('PATCH takes {"tags": {...}}.')
        found["tags"] = body["tags"]
        found["etag"] = arm.weak_etag()
        return JSONResponse(arm.render(found))

    @route("GET", GROUP + "/networkSecurityGroups", resource_type=NSG_TYPE)
    @route("GET", SUBSCRIPTION + "/networkSecurityGroups", resource_type=NSG_TYPE)
    @route("GET", GROUP + "/networkInterfaces", resource_type=NIC_TYPE)
    @route("GET", SUBSCRIPTION + "/networkInterfaces", resource_type=NIC_TYPE)
    @route("GET", GROUP + "/publicIPAddresses", resource_type=PUBLIC_IP_TYPE)
    @route("GET", SUBSCRIPTION + "/publicIPAddresses", resource_type=PUBLIC_IP_TYPE)
    @route("GET", GROUP + "/networkWatchers", resource_type=WATCHER_TYPE)
    @route("GET", SUBSCRIPTION + "/networkWatchers", resource_type=WATCHER_TYPE)
    async def list_resources(
        self,
        request: Request,
        subscription: str,
        resource_type: str,
        group: str | None = None,
    ) -> Response:
        return self.listing(resource_type, subscription, group)

    # ---- network security groups -----------------------------------------------------------------------------

    @route("PUT", NSG)
    async def put_nsg(self, request: Request, subscription: str, group: str, nsg: str) -> Response:
        self.require_scope(subscription, group)
        body = await arm.read_json(request)
        nsg_id = arm.resource_id(subscription, group, NSG_TYPE, nsg)
        existing = self.store.get(nsg_id, NSG_TYPE)
        if existing is not None:
            self.not_locked(existing["id"])
        arm.check_preconditions(request, existing["etag"] if existing else None)
        location = _location(body, existing)
        if existing is not None:
            nsg_id, nsg = existing["id"], existing["name"]
        etag = arm.weak_etag()
        rules = _rules_of(body.get("properties") or {}, nsg_id, etag)
        old_props = (existing or {}).get("properties", {})
        stored: Json = {
            "name": nsg,
            "id": nsg_id,
            "etag": etag,
            "type": NSG_TYPE,
            "location": location,
            "properties": {
                "provisioningState": "Updating",
                "resourceGuid": old_props.get("resourceGuid") or str(uuid.uuid4()),
                "securityRules": rules,
                "defaultSecurityRules": old_props.get("defaultSecurityRules") or default_security_rules(nsg_id, etag),
                "networkInterfaces": old_props.get("networkInterfaces", []),
            },
        }
        if old_props.get("subnets"):
            stored["properties"]["subnets"] = old_props["subnets"]
        if body.get("tags") is not None:
            stored["tags"] = body["tags"]
        stamp_nsg(stored, "Updating", etag)
        self.store.put(stored)
        operation = self.start(
            "PutNetworkSecurityGroupOperation",
            stored,
            finish=lambda: stamp_nsg(stored, "Succeeded"),
        )
        return self.accepted(request, operation, 200 if existing else 201, arm.render(stored))

    @route("DELETE", NSG)
    async def delete_nsg(self, request: Request, subscription: str, group: str, nsg: str) -> Response:
        self.require_scope(subscription, group)
        existing = self.store.get(arm.resource_id(subscription, group, NSG_TYPE, nsg), NSG_TYPE)
        if existing is None:
            return Response(status_code=204)
        self.not_locked(existing["id"])
        arm.check_preconditions(request, existing["etag"])
        users = [
            r["id"]
            for r in existing["properties"].get("networkInterfaces", []) + existing["properties"].get("subnets", [])
        ]
        if users:
            raise ArmError(
                400,
                "InUseNetworkSecurityGroupCannotBeDeleted",
                f"Network security group {existing['id']} cannot be deleted because it is in use by the following "
                f"resources: {', '.join(users)}. In order to delete the Network security group, remove the association "
                "with the resource(s).",
            )
        existing["properties"]["provisioningState"] = "Deleting"
        store = self.store

        def finish() -> None:
            store.delete(existing["id"])

        operation = self.start("DeleteNetworkSecurityGroupOperation", existing, finish=finish)
        return self.accepted(request, operation, 202, location=True)

    # ---- security rules ----------------------------------------------------------------------------------------

    def _nsg(self, subscription: str, group: str, nsg: str) -> Json:
        return self.find(subscription, group, NSG_TYPE, nsg)

    @route("GET", NSG + "/securityRules", collection="securityRules")
    @route("GET", NSG + "/defaultSecurityRules", collection="defaultSecurityRules")
    async def list_rules(self, request: Request, subscription: str, group: str, nsg: str, collection: str) -> Response:
        found = self._nsg(subscription, group, nsg)
        self.operations.observe_resource(found["id"])
        return JSONResponse({"value": copy.deepcopy(found["properties"].get(collection, []))})

    @route("GET", NSG + "/securityRules/{rule}", collection="securityRules")
    @route("GET", NSG + "/defaultSecurityRules/{rule}", collection="defaultSecurityRules")
    async def get_rule(
        self,
        request: Request,
        subscription: str,
        group: str,
        nsg: str,
        rule: str,
        collection: str,
    ) -> Response:
        found = self._nsg(subscription, group, nsg)
        self.operations.observe_resource(found["id"])
        match = find_rule(found, rule, collection)
        if match is None:
            raise arm.child_not_found(f"{found['id']}/{collection}/{rule}")
        return JSONResponse(copy.deepcopy(match))

    @route("PUT", NSG + "/securityRules/{rule}")
    async def put_rule(self, request: Request, subscription: str, group: str, nsg: str, rule: str) -> Response:
        found = self._nsg(subscription, group, nsg)
        body = await arm.read_json(request)
        self.not_locked(found["id"])
        existing = find_rule(found, rule)
        arm.check_preconditions(request, existing["etag"] if existing else None)
        name = existing["name"] if existing else rule
        validate_rule(name, body.get("properties"))
        etag = arm.weak_etag()
        new_rule = normalize_rule(name, body["properties"], found["id"], etag, "Updating")
        others = [r for r in found["properties"].get("securityRules", []) if r is not existing]
        check_conflicts([*others, new_rule])
        rules = found["properties"].setdefault("securityRules", [])
        if existing is not None:
            rules[rules.index(existing)] = new_rule
        else:
            rules.append(new_rule)
        stamp_nsg(found, "Updating", etag, only=new_rule)
        operation = self.start(
            "PutSecurityRuleOperation",
            found,
            finish=lambda: stamp_nsg(found, "Succeeded"),
        )
        return self.accepted(request, operation, 200 if existing else 201, copy.deepcopy(new_rule))

    @route("DELETE", NSG + "/securityRules/{rule}")
    async def delete_rule(self, request: Request, subscription: str, group: str, nsg: str, rule: str) -> Response:
        found = self._nsg(subscription, group, nsg)
        existing = find_rule(found, rule)
        if existing is None:
            return Response(status_code=204)
        self.not_locked(found["id"])
        arm.check_preconditions(request, existing["etag"])
        stamp_nsg(found, "Updating", only=existing)
        existing["properties"]["provisioningState"] = "Deleting"

        def finish() -> None:
            rules = found["properties"].get("securityRules", [])
            if existing in rules:
                rules.remove(existing)
            stamp_nsg(found, "Succeeded")

        operation = self.start("DeleteSecurityRuleOperation", found, finish=finish)
        return self.accepted(request, operation, 202, location=True)

    # ---- network interfaces ------------------------------------------------------------------------------------

    @route("PUT", NIC)
    async def put_nic(self, request: Request, subscription: str, group: str, nic: str) -> Response:
        self.require_scope(subscription, group)
        body = await arm.read_json(request)
        nic_id = arm.resource_id(subscription, group, NIC_TYPE, nic)
        existing = self.store.get(nic_id, NIC_TYPE)
        if existing is not None:
            nic_id, nic = existing["id"], existing["name"]
            self.not_locked(nic_id)
        arm.check_preconditions(request, existing["etag"] if existing else None)
        location = _location(body, existing)
        props = body.get("properties") or {}
        nsg = self._nic_nsg(props, location, nic_id)
        if not props.get("ipConfigurations"):
            raise bad_format(f"Network interface {nic_id} must have one or more IP configurations.")
        old_props = (existing or {}).get("properties", {})
        etag = arm.weak_etag()
        new_props: Json = {k: copy.deepcopy(v) for k, v in props.items() if k in NIC_CLIENT_FIELDS}
        if nsg is not None:
            new_props["networkSecurityGroup"] = {"id": nsg["id"]}
        else:
            new_props.pop("networkSecurityGroup", None)
        for server_owned in NIC_SERVER_FIELDS:
            if server_owned in old_props:
                new_props[server_owned] = copy.deepcopy(old_props[server_owned])
        new_props.setdefault("resourceGuid", str(uuid.uuid4()))
        new_props["ipConfigurations"] = _ip_configurations(props["ipConfigurations"], old_props, nic_id, etag)
        new_props["provisioningState"] = "Updating"
        stored: Json = {
            "name": nic,
            "id": nic_id,
            "etag": etag,
            "type": NIC_TYPE,
            "location": location,
            "properties": new_props,
        }
        if body.get("tags") is not None:
            stored["tags"] = body["tags"]
        if existing is None:
            expand_nic(stored)
            stored["properties"]["provisioningState"] = "Updating"
        old_nsg = (old_props.get("networkSecurityGroup") or {}).get("id")
        self.store.put(stored)
        set_nsg_association(self.store, stored, old_nsg, nsg["id"] if nsg else None)
        operation = self.start("PutNetworkInterfaceOperation", stored, finish=lambda: _settle_nic(stored))
        return self.accepted(request, operation, 200 if existing else 201, arm.render(stored))

    def _nic_nsg(self, props: Json, location: str, nic_id: str) -> Json | None:
        """The NSG a NIC's PUT references: it must exist in the NIC's region and not be in the middle of a write."""
        nsg_ref = (props.get("networkSecurityGroup") or {}).get("id")
        if not nsg_ref:
            return None
        nsg = self.store.get(nsg_ref, NSG_TYPE)
        if nsg is None or str(nsg.get("location", "")).lower() != str(location).lower():
            raise invalid_reference(nsg_ref, nic_id)
        held = self.operations.in_progress_on(nsg["id"])
        if held is not None:
            raise arm.referenced_resource_not_provisioned(self.cloud, held, nsg["id"], nic_id)
        return nsg

    @route("DELETE", NIC)
    async def delete_nic(self, request: Request, subscription: str, group: str, nic: str) -> Response:
        self.require_scope(subscription, group)
        store = self.store
        existing = store.get(arm.resource_id(subscription, group, NIC_TYPE, nic), NIC_TYPE)
        if existing is None:
            return Response(status_code=204)
        self.not_locked(existing["id"])
        arm.check_preconditions(request, existing["etag"])
        vm = (existing["properties"].get("virtualMachine") or {}).get("id")
        if vm:
            raise ArmError(
                400,
                "NicInUse",
                f"Network Interface {existing['id']} is used by existing resource {vm}. In order to delete the "
                "network interface, it must be dissociated from the resource. To learn more, see aka.ms/deletenic.",
            )
        existing["properties"]["provisioningState"] = "Deleting"

        def finish() -> None:
            nsg_id = (existing["properties"].get("networkSecurityGroup") or {}).get("id")
            set_nsg_association(store, existing, nsg_id, None)
            store.delete(existing["id"])

        operation = self.start("DeleteNetworkInterfaceOperation", existing, finish=finish)
        return self.accepted(request, operation, 202, location=True)

    @route("POST", NIC + "/effectiveNetworkSecurityGroups")
    async def effective_nsgs(self, request: Request, subscription: str, group: str, nic: str) -> Response:
        found = self.find(subscription, group, NIC_TYPE, nic)
        groups = []
        nsg = self.store.get((found["properties"].get("networkSecurityGroup") or {}).get("id"), NSG_TYPE)
        if nsg is not None:
            groups.append(
                {
                    "networkSecurityGroup": {"id": nsg["id"]},
                    "association": {"networkInterface": {"id": found["id"]}},
                    "effectiveSecurityRules": effective_rules(nsg),
                }
            )
        operation = self.start(
            "GetEffectiveNetworkSecurityGroupsOperation",
            found,
            result_body={"value": groups},
        )
        return self.accepted(request, operation, 202, location=True)

    # ---- packet captures ---------------------------------------------------------------------------------------

    def _watcher(self, subscription: str, group: str, watcher: str) -> Json:
        return self.find(subscription, group, WATCHER_TYPE, watcher)

    def _capture(self, watcher: Json, capture: str) -> Json | None:
        return self.store.get(f"{watcher['id']}/packetCaptures/{capture}", CAPTURE_TYPE)

    def _existing_capture(self, subscription: str, group: str, watcher: str, capture: str) -> tuple[Json, Json]:
        """(watcher, capture), or Microsoft.Network's 404 for either."""
        parent = self._watcher(subscription, group, watcher)
        found = self._capture(parent, capture)
        if found is None:
            raise arm.child_not_found(f"{parent['id']}/packetCaptures/{capture}")
        return parent, found

    @route("PUT", CAPTURE)
    async def create_capture(
        self,
        request: Request,
        subscription: str,
        group: str,
        watcher: str,
        capture: str,
    ) -> Response:
        parent = self._watcher(subscription, group, watcher)
        body = await arm.read_json(request)
        capture_id = f"{parent['id']}/packetCaptures/{capture}"
        if self._capture(parent, capture) is not None:
            raise ArmError(
                409,
                "PacketCaptureAlreadyExists",
                f"Packet capture {capture_id} already exists.",
            )
        props = body.get("properties") or {}
        vm = self._capture_target(props, capture_id)
        stored_props = _capture_properties(props, vm, capture)
        stored: Json = {
            "name": capture,
            "id": capture_id,
            "etag": arm.weak_etag(),
            "type": CAPTURE_TYPE,
            "properties": stored_props,
            "queryStatus": {
                "packetCaptureStatus": "NotStarted",
                "stopReason": "",
                "packetCaptureError": [],
            },
        }
        self.store.put(stored)

        def finish() -> None:
            stored["etag"] = arm.weak_etag()
            stored["properties"]["provisioningState"] = "Succeeded"
            if stored["queryStatus"]["packetCaptureStatus"] == "NotStarted":
                stored["queryStatus"].update(packetCaptureStatus="Running", captureStartTime=arm.utc_now())

        operation = self.start(
            "PutPacketCaptureOperation",
            stored,
            location=parent.get("location"),
            finish=finish,
        )
        return self.accepted(request, operation, 201, render_capture(stored))

    def _capture_target(self, props: Json, capture_id: str) -> Json:
        """The running VM a new capture targets, after checking where it would write."""
        target = props.get("target")
        if not target:
            raise bad_format("properties.target (the id of the virtual machine to capture on) is required.")
        vm = self.store.get(target, VM_TYPE)
        if vm is None:
            raise invalid_reference(target, capture_id)
        if vm_power_state(vm) != "running":
            raise ArmError(
                400,
                "VmNotRunning",
                f"Packet capture cannot start on virtual machine {vm['id']} because it is not running.",
            )
        storage = props.get("storageLocation") or {}
        if not (storage.get("storageId") or storage.get("filePath")):
            raise bad_format("properties.storageLocation needs storageId or filePath.")
        if storage.get("storageId") and self.store.get(storage["storageId"], arm.STORAGE_TYPE) is None:
            raise invalid_reference(storage["storageId"], capture_id)
        limit = props.get("timeLimitInSeconds", MAX_CAPTURE_SECONDS)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= MAX_CAPTURE_SECONDS:
            raise bad_format(
                f"timeLimitInSeconds must be between 0 and {MAX_CAPTURE_SECONDS}. Value provided: {limit}."
            )
        return vm

    @route("GET", CAPTURE)
    async def get_capture(
        self,
        request: Request,
        subscription: str,
        group: str,
        watcher: str,
        capture: str,
    ) -> Response:
        _, found = self._existing_capture(subscription, group, watcher, capture)
        self.operations.observe_resource(found["id"])
        return JSONResponse(render_capture(found))

    @route("GET", CAPTURES)
    async def list_captures(self, request: Request, subscription: str, group: str, watcher: str) -> Response:
        parent = self._watcher(subscription, group, watcher)
        prefix = arm.key(parent["id"]) + "/packetcaptures/"
        captures = [c for c in self.store.resources if arm.key(c["id"]).startswith(prefix)]
        return JSONResponse({"value": [render_capture(c) for c in captures]})

    @route("DELETE", CAPTURE)
    async def delete_capture(
        self,
        request: Request,
        subscription: str,
        group: str,
        watcher: str,
        capture: str,
    ) -> Response:
        parent = self._watcher(subscription, group, watcher)
        found = self._capture(parent, capture)
        if found is None:
            return Response(status_code=204)
        self.not_locked(found["id"])
        found["properties"]["provisioningState"] = "Deleting"
        store = self.store

        def finish() -> None:
            store.delete(found["id"])

        operation = self.start(
            "DeletePacketCaptureOperation",
            found,
            location=parent.get("location"),
            finish=finish,
        )
        return self.accepted(request, operation, 202, location=True)

    @route("POST", CAPTURE + "/stop")
    async def stop_capture(
        self,
        request: Request,
        subscription: str,
        group: str,
        watcher: str,
        capture: str,
    ) -> Response:
        parent, found = self._existing_capture(subscription, group, watcher, capture)

        def finish() -> None:
            status = capture_status(found)
            if status["packetCaptureStatus"] in ("NotStarted", "Running"):
                status.update(packetCaptureStatus="Stopped", stopReason="ManualStop")

        operation = self.start(
            "StopPacketCaptureOperation",
            found,
            location=parent.get("location"),
            finish=finish,
        )
        return self.accepted(request, operation, 202, location=True)

    @route("POST", CAPTURE + "/queryStatus")
    async def query_capture(
        self,
        request: Request,
        subscription: str,
        group: str,
        watcher: str,
        capture: str,
    ) -> Response:
        _, found = self._existing_capture(subscription, group, watcher, capture)
        status = capture_status(found)
        body: Json = {"name": found["name"], "id": found["id"]}
        if status.get("captureStartTime"):
            body["captureStartTime"] = status["captureStartTime"]
        body["packetCaptureStatus"] = status["packetCaptureStatus"]
        body["stopReason"] = status.get("stopReason", "")
        body["packetCaptureError"] = list(status.get("packetCaptureError", []))
        return JSONResponse(body)


def _location(body: Json, existing: Json | None) -> str:
    location = body.get("location") or (existing or {}).get("location")
    if not location:
        raise ArmError(
            400,
            "LocationRequired",
            "The location property is required for this definition.",
        )
    return str(location)


def _rules_of(props: Json, nsg_id: str, etag: str) -> list[Json]:
    """The security rules of an NSG's PUT body, validated and normalized."""
    rules = []
    for rule in props.get("securityRules") or []:
        rule_props = rule.get("properties") if isinstance(rule, dict) else None
        name = str(rule.get("name", "")) if isinstance(rule, dict) else ""
        validate_rule(name, rule_props)
        assert rule_props is not None
        rules.append(normalize_rule(name, rule_props, nsg_id, etag, "Updating"))
    check_conflicts(rules)
    return rules


def _ip_configurations(configs_in: list[Json], old_props: Json, nic_id: str, etag: str) -> list[Json]:
    """A NIC's IP configurations from its PUT body; an address the client leaves out keeps its old value."""
    old_configs = {c["name"].lower(): c for c in old_props.get("ipConfigurations", [])}
    configs = []
    for index, config in enumerate(configs_in):
        name = str(config.get("name") or f"ipconfig{index + 1}")
        old = old_configs.get(name.lower(), {})
        cprops = {
            k: copy.deepcopy(v) for k, v in (config.get("properties") or {}).items() if k in IP_CONFIG_CLIENT_FIELDS
        }
        cprops["provisioningState"] = "Updating"
        if "privateIPAddress" not in cprops and "privateIPAddress" in old.get("properties", {}):
            cprops["privateIPAddress"] = old["properties"]["privateIPAddress"]
        cprops.setdefault("privateIPAllocationMethod", "Dynamic")
        cprops.setdefault("privateIPAddressVersion", "IPv4")
        cprops.setdefault("primary", index == 0)
        configs.append(
            {
                "name": name,
                "id": f"{nic_id}/ipConfigurations/{name}",
                "etag": etag,
                "type": IP_CONFIG_TYPE,
                "properties": cprops,
            }
        )
    return configs


def _settle_nic(nic: Json) -> None:
    nic["etag"] = arm.weak_etag()
    nic["properties"]["provisioningState"] = "Succeeded"
    for config in nic["properties"]["ipConfigurations"]:
        config["etag"] = nic["etag"]
        config["properties"]["provisioningState"] = "Succeeded"


def _capture_properties(props: Json, vm: Json, capture: str) -> Json:
    stored_props: Json = copy.deepcopy(props)
    stored_props["target"] = vm["id"]
    stored_props.setdefault("bytesToCapturePerPacket", 0)
    stored_props.setdefault("totalBytesPerSession", DEFAULT_CAPTURE_BYTES)
    stored_props["timeLimitInSeconds"] = props.get("timeLimitInSeconds", MAX_CAPTURE_SECONDS)
    stored_props.setdefault("filters", [])
    storage = props.get("storageLocation") or {}
    if storage.get("storageId") and not storage.get("storagePath"):
        stored_props["storageLocation"] = {
            **storage,
            "storagePath": storage_path(storage["storageId"], vm["id"], capture),
        }
    stored_props["provisioningState"] = "Updating"
    return stored_props
