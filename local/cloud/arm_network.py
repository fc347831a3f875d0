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
from local.cloud.arm_resources import Json
from local.cloud.errors import arm_error
from local.cloud.router import Router
from local.cloud.state import Cloud

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
    ("DenyAllOutBound", "Deny all outbound traffic", "*", "*", "Deny", 65500, "Outbound"),
)

# Properties of a rule the client sets; the rest (provisioningState) belongs to the provider.
RULE_FIELDS = (
    "description", "protocol", "sourcePortRange", "destinationPortRange", "sourceAddressPrefix",
    "destinationAddressPrefix", "access", "priority", "direction", "sourcePortRanges", "destinationPortRanges",
    "sourceAddressPrefixes", "destinationAddressPrefixes", "sourceApplicationSecurityGroups",
    "destinationApplicationSecurityGroups",
)  # fmt: skip
RULE_LIST_FIELDS = ("sourcePortRanges", "destinationPortRanges", "sourceAddressPrefixes", "destinationAddressPrefixes")

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


def bad_format(message: str) -> Response:
    """Microsoft.Network's answer to a body it cannot use."""
    return arm.error_with_details(
        400,
        "InvalidRequestFormat",
        "Cannot parse the request.",
        [{"code": "InvalidJsonPropertyValue", "message": message}],
    )


def invalid_reference(referenced: str, user: str) -> Response:
    return arm_error(
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
    for field_name, table in (("protocol", PROTOCOLS), ("access", ACCESSES), ("direction", DIRECTIONS)):
        if isinstance(props.get(field_name), str):
            props[field_name] = table.get(props[field_name].lower(), props[field_name])
    return {"name": name, "id": f"{nsg_id}/securityRules/{name}", "etag": etag, "type": RULE_TYPE, "properties": props}


def validate_rule(name: str, properties: Any) -> Response | None:
    if not name:
        return bad_format("Every security rule needs a name.")
    if not isinstance(properties, dict):
        return bad_format(f"Security rule {name} has no properties.")
    for field_name, table in (("protocol", PROTOCOLS), ("access", ACCESSES), ("direction", DIRECTIONS)):
        value = properties.get(field_name)
        if not isinstance(value, str) or value.lower() not in table:
            return bad_format(
                f"Security rule {name} has invalid {field_name[0].upper() + field_name[1:]}. Value provided: {value}. "
                f"Allowed values: {', '.join(table.values())}."
            )
    priority = properties.get("priority")
    if isinstance(priority, bool) or not isinstance(priority, int) or not MIN_PRIORITY <= priority <= MAX_PRIORITY:
        return arm_error(
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
            return bad_format(
                f"Security rule {name} needs {side}AddressPrefix, {side}AddressPrefixes "
                f"or {side}ApplicationSecurityGroups."
            )
        if not (properties.get(f"{side}PortRange") or properties.get(f"{side}PortRanges")):
            return bad_format(f"Security rule {name} needs {side}PortRange or {side}PortRanges.")
    return None


def conflicting_rules(rules: list[Json]) -> Response | None:
    """Unique priority per direction, and unique names."""
    seen: dict[tuple[str, int], str] = {}
    names: set[str] = set()
    for rule in rules:
        lowered = rule["name"].lower()
        if lowered in names:
            return bad_format(f"Security rule name {rule['name']} is used more than once.")
        names.add(lowered)
        slot = (str(rule["properties"]["direction"]).lower(), int(rule["properties"]["priority"]))
        if slot in seen:
            return arm_error(
                400,
                "SecurityRuleConflict",
                f"Security rule {rule['name']} conflicts with rule {seen[slot]}. Rules cannot have the same Priority "
                "and Direction. To learn more, see aka.ms/nsgrules.",
            )
        seen[slot] = rule["name"]
    return None


def stamp_nsg(nsg: Json, state: str, etag: str | None = None, only: Json | None = None) -> None:
    """One etag for the NSG and every rule in it, as the provider reports them; the provisioning state of the NSG
    and of the rules being written (`only`: a single rule; None: all of them)."""
    etag = etag or arm.weak_etag()
    nsg["etag"] = etag
    props = nsg.setdefault("properties", {})
    props["provisioningState"] = state
    for rule in [*props.get("securityRules", []), *props.get("defaultSecurityRules", [])]:
        rule["etag"] = etag
        if only is None or rule is only:
            rule.setdefault("properties", {})["provisioningState"] = state


def find_rule(nsg: Json, name: str, collection: str = "securityRules") -> Json | None:
    return next((r for r in nsg.get("properties", {}).get(collection, []) if r["name"].lower() == name.lower()), None)


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


def set_nsg_association(cloud: Cloud, nic: Json, old_nsg_id: str | None, new_nsg_id: str | None) -> None:
    store = arm.store(cloud)
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
        (s["code"].split("/", 1)[1] for s in statuses if str(s.get("code", "")).startswith("PowerState/")), "running"
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


def register(router: Router, cloud: Cloud) -> None:
    route = arm.arm_routes(router, cloud)
    group_base = "/subscriptions/{subscription}/resourcegroups/{group}/providers/Microsoft.Network"
    nsg_base = group_base + "/networkSecurityGroups/{nsg}"
    nic_base = group_base + "/networkInterfaces/{nic}"
    capture_base = group_base + "/networkWatchers/{watcher}/packetCaptures/{capture}"

    def start(name: str, target: Json, location: str | None = None, **kwargs: Any) -> arm.Operation:
        parsed = arm.ArmId.parse(target["id"])
        return arm.operations(cloud).start(
            cloud,
            name=name,
            namespace=NAMESPACE,
            subscription=parsed.subscription if parsed else "",
            location=location or target.get("location") or "westeurope",
            target=target["id"],
            **kwargs,
        )

    def read_listing(resource_type: str) -> None:
        namespace, _, type_name = resource_type.partition("/")

        async def list_group(request: Request, subscription: str, group: str) -> Response:
            failure = arm.scope_error(cloud, subscription, group)
            if failure is not None:
                return failure
            return arm.listing(arm.store(cloud).of_type(resource_type, subscription, group))

        async def list_subscription(request: Request, subscription: str) -> Response:
            failure = arm.scope_error(cloud, subscription)
            if failure is not None:
                return failure
            return arm.listing(arm.store(cloud).of_type(resource_type, subscription))

        route("GET", f"{group_base}/{type_name}")(list_group)
        route("GET", f"/subscriptions/{{subscription}}/providers/{namespace}/{type_name}")(list_subscription)

    def get_resource(resource_type: str, parameter: str) -> None:
        type_name = resource_type.partition("/")[2]

        async def get_one(request: Request, subscription: str, group: str, **names: str) -> Response:
            found, failure = arm.lookup(cloud, subscription, group, resource_type, names[parameter])
            if failure is not None:
                return failure
            assert found is not None
            arm.operations(cloud).observe_resource(found["id"])
            return JSONResponse(arm.render(found))

        async def update_tags(request: Request, subscription: str, group: str, **names: str) -> Response:
            """PATCH {"tags": {...}}: synchronous on Microsoft.Network, a new etag, no operation."""
            found, failure = arm.lookup(cloud, subscription, group, resource_type, names[parameter])
            if failure is not None:
                return failure
            assert found is not None
            body, failure = await arm.json_body(request)
            if failure is not None:
                return failure
            assert body is not None
            held = arm.operations(cloud).in_progress_on(found["id"])
            if held is not None:
                return arm.another_operation_in_progress(cloud, held, found["id"])
            if not isinstance(body.get("tags"), dict):
                return bad_format('PATCH takes {"tags": {...}}.')
            found["tags"] = body["tags"]
            found["etag"] = arm.weak_etag()
            return JSONResponse(arm.render(found))

        route("GET", f"{group_base}/{type_name}/{{{parameter}}}")(get_one)
        if resource_type != WATCHER_TYPE:
            route("PATCH", f"{group_base}/{type_name}/{{{parameter}}}")(update_tags)

    for resource_type, parameter in (
        (NSG_TYPE, "nsg"),
        (NIC_TYPE, "nic"),
        (PUBLIC_IP_TYPE, "address"),
        (WATCHER_TYPE, "watcher"),
    ):
        get_resource(resource_type, parameter)
        read_listing(resource_type)

    # ---- network security groups -----------------------------------------------------------------------------

    @route("PUT", nsg_base)
    async def put_nsg(request: Request, subscription: str, group: str, nsg: str) -> Response:
        failure = arm.scope_error(cloud, subscription, group)
        if failure is not None:
            return failure
        body, failure = await arm.json_body(request)
        if failure is not None:
            return failure
        assert body is not None
        store = arm.store(cloud)
        nsg_id = arm.resource_id(subscription, group, NSG_TYPE, nsg)
        existing = store.get(nsg_id, NSG_TYPE)
        if existing is not None:
            held = arm.operations(cloud).in_progress_on(existing["id"])
            if held is not None:
                return arm.another_operation_in_progress(cloud, held, existing["id"])
        failure = arm.precondition_failed(request, existing["etag"] if existing else None)
        if failure is not None:
            return failure
        location = body.get("location") or (existing or {}).get("location")
        if not location:
            return arm_error(400, "LocationRequired", "The location property is required for this definition.")
        if existing is not None:
            nsg_id, nsg = existing["id"], existing["name"]
        props = body.get("properties") or {}
        etag = arm.weak_etag()
        rules = []
        for rule in props.get("securityRules") or []:
            rule_props = rule.get("properties") if isinstance(rule, dict) else None
            name = str(rule.get("name", "")) if isinstance(rule, dict) else ""
            failure = validate_rule(name, rule_props)
            if failure is not None:
                return failure
            assert rule_props is not None
            rules.append(normalize_rule(name, rule_props, nsg_id, etag, "Updating"))
        failure = conflicting_rules(rules)
        if failure is not None:
            return failure
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
        store.put(stored)
        operation = start("PutNetworkSecurityGroupOperation", stored, finish=lambda: stamp_nsg(stored, "Succeeded"))
        return arm.accepted(request, cloud, operation, 200 if existing else 201, arm.render(stored))

    @route("DELETE", nsg_base)
    async def delete_nsg(request: Request, subscription: str, group: str, nsg: str) -> Response:
        failure = arm.scope_error(cloud, subscription, group)
        if failure is not None:
            return failure
        store = arm.store(cloud)
        existing = store.get(arm.resource_id(subscription, group, NSG_TYPE, nsg), NSG_TYPE)
        if existing is None:
            return Response(status_code=204)
        held = arm.operations(cloud).in_progress_on(existing["id"])
        if held is not None:
            return arm.another_operation_in_progress(cloud, held, existing["id"])
        failure = arm.precondition_failed(request, existing["etag"])
        if failure is not None:
            return failure
        users = [
            r["id"]
            for r in existing["properties"].get("networkInterfaces", []) + existing["properties"].get("subnets", [])
        ]
        if users:
            return arm_error(
                400,
                "InUseNetworkSecurityGroupCannotBeDeleted",
                f"Network security group {existing['id']} cannot be deleted because it is in use by the following "
                f"resources: {', '.join(users)}. In order to delete the Network security group, remove the association "
                "with the resource(s).",
            )
        existing["properties"]["provisioningState"] = "Deleting"

        def finish() -> None:
            store.delete(existing["id"])

        operation = start("DeleteNetworkSecurityGroupOperation", existing, finish=finish)
        return arm.accepted(request, cloud, operation, 202, location=True)

    # ---- security rules ----------------------------------------------------------------------------------------

    def parent_nsg(subscription: str, group: str, nsg: str) -> tuple[Json | None, Response | None]:
        return arm.lookup(cloud, subscription, group, NSG_TYPE, nsg)

    for collection in ("securityRules", "defaultSecurityRules"):

        def rule_reads(collection: str = collection) -> None:
            async def list_rules(request: Request, subscription: str, group: str, nsg: str) -> Response:
                found, failure = parent_nsg(subscription, group, nsg)
                if failure is not None:
                    return failure
                assert found is not None
                arm.operations(cloud).observe_resource(found["id"])
                return JSONResponse({"value": copy.deepcopy(found["properties"].get(collection, []))})

            async def get_rule(request: Request, subscription: str, group: str, nsg: str, rule: str) -> Response:
                found, failure = parent_nsg(subscription, group, nsg)
                if failure is not None:
                    return failure
                assert found is not None
                arm.operations(cloud).observe_resource(found["id"])
                match = find_rule(found, rule, collection)
                if match is None:
                    return arm.child_not_found(f"{found['id']}/{collection}/{rule}")
                return JSONResponse(copy.deepcopy(match))

            route("GET", f"{nsg_base}/{collection}")(list_rules)
            route("GET", f"{nsg_base}/{collection}/{{rule}}")(get_rule)

        rule_reads()

    @route("PUT", nsg_base + "/securityRules/{rule}")
    async def put_rule(request: Request, subscription: str, group: str, nsg: str, rule: str) -> Response:
        found, failure = parent_nsg(subscription, group, nsg)
        if failure is not None:
            return failure
        assert found is not None
        body, failure = await arm.json_body(request)
        if failure is not None:
            return failure
        assert body is not None
        held = arm.operations(cloud).in_progress_on(found["id"])
        if held is not None:
            return arm.another_operation_in_progress(cloud, held, found["id"])
        existing = find_rule(found, rule)
        failure = arm.precondition_failed(request, existing["etag"] if existing else None)
        if failure is not None:
            return failure
        name = existing["name"] if existing else rule
        failure = validate_rule(name, body.get("properties"))
        if failure is not None:
            return failure
        etag = arm.weak_etag()
        new_rule = normalize_rule(name, body["properties"], found["id"], etag, "Updating")
        others = [r for r in found["properties"].get("securityRules", []) if r is not existing]
        failure = conflicting_rules([*others, new_rule])
        if failure is not None:
            return failure
        rules = found["properties"].setdefault("securityRules", [])
        if existing is not None:
            rules[rules.index(existing)] = new_rule
        else:
            rules.append(new_rule)
        stamp_nsg(found, "Updating", etag, only=new_rule)
        operation = start("PutSecurityRuleOperation", found, finish=lambda: stamp_nsg(found, "Succeeded"))
        return arm.accepted(request, cloud, operation, 200 if existing else 201, copy.deepcopy(new_rule))

    @route("DELETE", nsg_base + "/securityRules/{rule}")
    async def delete_rule(request: Request, subscription: str, group: str, nsg: str, rule: str) -> Response:
        found, failure = parent_nsg(subscription, group, nsg)
        if failure is not None:
            return failure
        assert found is not None
        existing = find_rule(found, rule)
        if existing is None:
            return Response(status_code=204)
        held = arm.operations(cloud).in_progress_on(found["id"])
        if held is not None:
            return arm.another_operation_in_progress(cloud, held, found["id"])
        failure = arm.precondition_failed(request, existing["etag"])
        if failure is not None:
            return failure
        stamp_nsg(found, "Updating", only=existing)
        existing["properties"]["provisioningState"] = "Deleting"

        def finish() -> None:
            rules = found["properties"].get("securityRules", [])
            if existing in rules:
                rules.remove(existing)
            stamp_nsg(found, "Succeeded")

        operation = start("DeleteSecurityRuleOperation", found, finish=finish)
        return arm.accepted(request, cloud, operation, 202, location=True)

    # ---- network interfaces ------------------------------------------------------------------------------------

    @route("PUT", nic_base)
    async def put_nic(request: Request, subscription: str, group: str, nic: str) -> Response:
        failure = arm.scope_error(cloud, subscription, group)
        if failure is not None:
            return failure
        body, failure = await arm.json_body(request)
        if failure is not None:
            return failure
        assert body is not None
        store = arm.store(cloud)
        book = arm.operations(cloud)
        nic_id = arm.resource_id(subscription, group, NIC_TYPE, nic)
        existing = store.get(nic_id, NIC_TYPE)
        if existing is not None:
            nic_id, nic = existing["id"], existing["name"]
            held = book.in_progress_on(nic_id)
            if held is not None:
                return arm.another_operation_in_progress(cloud, held, nic_id)
        failure = arm.precondition_failed(request, existing["etag"] if existing else None)
        if failure is not None:
            return failure
        location = body.get("location") or (existing or {}).get("location")
        if not location:
            return arm_error(400, "LocationRequired", "The location property is required for this definition.")
        props = body.get("properties") or {}
        nsg_ref = (props.get("networkSecurityGroup") or {}).get("id")
        nsg = store.get(nsg_ref, NSG_TYPE) if nsg_ref else None
        if nsg_ref:
            if nsg is None or str(nsg.get("location", "")).lower() != str(location).lower():
                return invalid_reference(nsg_ref, nic_id)
            held = book.in_progress_on(nsg["id"])
            if held is not None:
                return arm.referenced_resource_not_provisioned(cloud, held, nsg["id"], nic_id)
        configs_in = props.get("ipConfigurations") or []
        if not configs_in:
            return bad_format(f"Network interface {nic_id} must have one or more IP configurations.")
        old_props = (existing or {}).get("properties", {})
        old_configs = {c["name"].lower(): c for c in old_props.get("ipConfigurations", [])}
        etag = arm.weak_etag()
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
        new_props: Json = {k: copy.deepcopy(v) for k, v in props.items() if k in NIC_CLIENT_FIELDS}
        if nsg is not None:
            new_props["networkSecurityGroup"] = {"id": nsg["id"]}
        else:
            new_props.pop("networkSecurityGroup", None)
        for server_owned in (
            "virtualMachine",
            "macAddress",
            "resourceGuid",
            "primary",
            "vnetEncryptionSupported",
            "hostedWorkloads",
            "tapConfigurations",
        ):
            if server_owned in old_props:
                new_props[server_owned] = copy.deepcopy(old_props[server_owned])
        new_props.setdefault("resourceGuid", str(uuid.uuid4()))
        new_props["ipConfigurations"] = configs
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
        store.put(stored)
        set_nsg_association(cloud, stored, old_nsg, nsg["id"] if nsg else None)

        def finish() -> None:
            stored["etag"] = arm.weak_etag()
            stored["properties"]["provisioningState"] = "Succeeded"
            for config in stored["properties"]["ipConfigurations"]:
                config["etag"] = stored["etag"]
                config["properties"]["provisioningState"] = "Succeeded"

        operation = start("PutNetworkInterfaceOperation", stored, finish=finish)
        return arm.accepted(request, cloud, operation, 200 if existing else 201, arm.render(stored))

    @route("DELETE", nic_base)
    async def delete_nic(request: Request, subscription: str, group: str, nic: str) -> Response:
        failure = arm.scope_error(cloud, subscription, group)
        if failure is not None:
            return failure
        store = arm.store(cloud)
        existing = store.get(arm.resource_id(subscription, group, NIC_TYPE, nic), NIC_TYPE)
        if existing is None:
            return Response(status_code=204)
        held = arm.operations(cloud).in_progress_on(existing["id"])
        if held is not None:
            return arm.another_operation_in_progress(cloud, held, existing["id"])
        failure = arm.precondition_failed(request, existing["etag"])
        if failure is not None:
            return failure
        vm = (existing["properties"].get("virtualMachine") or {}).get("id")
        if vm:
            return arm_error(
                400,
                "NicInUse",
                f"Network Interface {existing['id']} is used by existing resource {vm}. In order to delete the "
                "network interface, it must be dissociated from the resource. To learn more, see aka.ms/deletenic.",
            )
        existing["properties"]["provisioningState"] = "Deleting"

        def finish() -> None:
            set_nsg_association(
                cloud, existing, (existing["properties"].get("networkSecurityGroup") or {}).get("id"), None
            )
            store.delete(existing["id"])

        operation = start("DeleteNetworkInterfaceOperation", existing, finish=finish)
        return arm.accepted(request, cloud, operation, 202, location=True)

    @route("POST", nic_base + "/effectiveNetworkSecurityGroups")
    async def effective_nsgs(request: Request, subscription: str, group: str, nic: str) -> Response:
        found, failure = arm.lookup(cloud, subscription, group, NIC_TYPE, nic)
        if failure is not None:
            return failure
        assert found is not None
        groups = []
        nsg = arm.store(cloud).get((found["properties"].get("networkSecurityGroup") or {}).get("id"), NSG_TYPE)
        if nsg is not None:
            groups.append(
                {
                    "networkSecurityGroup": {"id": nsg["id"]},
                    "association": {"networkInterface": {"id": found["id"]}},
                    "effectiveSecurityRules": effective_rules(nsg),
                }
            )
        operation = start("GetEffectiveNetworkSecurityGroupsOperation", found, result_body={"value": groups})
        return arm.accepted(request, cloud, operation, 202, location=True)

    # ---- packet captures ---------------------------------------------------------------------------------------

    def parent_watcher(subscription: str, group: str, watcher: str) -> tuple[Json | None, Response | None]:
        return arm.lookup(cloud, subscription, group, WATCHER_TYPE, watcher)

    def find_capture(watcher: Json, capture: str) -> Json | None:
        return arm.store(cloud).get(f"{watcher['id']}/packetCaptures/{capture}", CAPTURE_TYPE)

    @route("PUT", capture_base)
    async def create_capture(request: Request, subscription: str, group: str, watcher: str, capture: str) -> Response:
        parent, failure = parent_watcher(subscription, group, watcher)
        if failure is not None:
            return failure
        assert parent is not None
        body, failure = await arm.json_body(request)
        if failure is not None:
            return failure
        assert body is not None
        capture_id = f"{parent['id']}/packetCaptures/{capture}"
        if find_capture(parent, capture) is not None:
            return arm_error(409, "PacketCaptureAlreadyExists", f"Packet capture {capture_id} already exists.")
        props = body.get("properties") or {}
        store = arm.store(cloud)
        target = props.get("target")
        if not target:
            return bad_format("properties.target (the id of the virtual machine to capture on) is required.")
        vm = store.get(target, VM_TYPE)
        if vm is None:
            return invalid_reference(target, capture_id)
        if vm_power_state(vm) != "running":
            return arm_error(
                400,
                "VmNotRunning",
                f"Packet capture cannot start on virtual machine {vm['id']} because it is not running.",
            )
        storage = props.get("storageLocation") or {}
        if not (storage.get("storageId") or storage.get("filePath")):
            return bad_format("properties.storageLocation needs storageId or filePath.")
        if storage.get("storageId") and store.get(storage["storageId"], arm.STORAGE_TYPE) is None:
            return invalid_reference(storage["storageId"], capture_id)
        limit = props.get("timeLimitInSeconds", MAX_CAPTURE_SECONDS)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= MAX_CAPTURE_SECONDS:
            return bad_format(
                f"timeLimitInSeconds must be between 0 and {MAX_CAPTURE_SECONDS}. Value provided: {limit}."
            )
        stored_props: Json = copy.deepcopy(props)
        stored_props["target"] = vm["id"]
        stored_props.setdefault("bytesToCapturePerPacket", 0)
        stored_props.setdefault("totalBytesPerSession", DEFAULT_CAPTURE_BYTES)
        stored_props["timeLimitInSeconds"] = limit
        stored_props.setdefault("filters", [])
        if storage.get("storageId") and not storage.get("storagePath"):
            stored_props["storageLocation"] = {
                **storage,
                "storagePath": storage_path(storage["storageId"], vm["id"], capture),
            }
        stored_props["provisioningState"] = "Updating"
        stored: Json = {
            "name": capture,
            "id": capture_id,
            "etag": arm.weak_etag(),
            "type": CAPTURE_TYPE,
            "properties": stored_props,
            "queryStatus": {"packetCaptureStatus": "NotStarted", "stopReason": "", "packetCaptureError": []},
        }
        store.put(stored)

        def finish() -> None:
            stored["etag"] = arm.weak_etag()
            stored["properties"]["provisioningState"] = "Succeeded"
            if stored["queryStatus"]["packetCaptureStatus"] == "NotStarted":
                stored["queryStatus"].update(packetCaptureStatus="Running", captureStartTime=arm.utc_now())

        operation = start("PutPacketCaptureOperation", stored, location=parent.get("location"), finish=finish)
        return arm.accepted(request, cloud, operation, 201, render_capture(stored))

    @route("GET", capture_base)
    async def get_capture(request: Request, subscription: str, group: str, watcher: str, capture: str) -> Response:
        parent, failure = parent_watcher(subscription, group, watcher)
        if failure is not None:
            return failure
        assert parent is not None
        found = find_capture(parent, capture)
        if found is None:
            return arm.child_not_found(f"{parent['id']}/packetCaptures/{capture}")
        arm.operations(cloud).observe_resource(found["id"])
        return JSONResponse(render_capture(found))

    @route("GET", group_base + "/networkWatchers/{watcher}/packetCaptures")
    async def list_captures(request: Request, subscription: str, group: str, watcher: str) -> Response:
        parent, failure = parent_watcher(subscription, group, watcher)
        if failure is not None:
            return failure
        assert parent is not None
        prefix = arm.key(parent["id"]) + "/packetcaptures/"
        captures = [c for c in arm.store(cloud).resources if arm.key(c["id"]).startswith(prefix)]
        return JSONResponse({"value": [render_capture(c) for c in captures]})

    @route("DELETE", capture_base)
    async def delete_capture(request: Request, subscription: str, group: str, watcher: str, capture: str) -> Response:
        parent, failure = parent_watcher(subscription, group, watcher)
        if failure is not None:
            return failure
        assert parent is not None
        found = find_capture(parent, capture)
        if found is None:
            return Response(status_code=204)
        held = arm.operations(cloud).in_progress_on(found["id"])
        if held is not None:
            return arm.another_operation_in_progress(cloud, held, found["id"])
        found["properties"]["provisioningState"] = "Deleting"
        store = arm.store(cloud)

        def finish() -> None:
            store.delete(found["id"])

        operation = start("DeletePacketCaptureOperation", found, location=parent.get("location"), finish=finish)
        return arm.accepted(request, cloud, operation, 202, location=True)

    @route("POST", capture_base + "/stop")
    async def stop_capture(request: Request, subscription: str, group: str, watcher: str, capture: str) -> Response:
        parent, failure = parent_watcher(subscription, group, watcher)
        if failure is not None:
            return failure
        assert parent is not None
        found = find_capture(parent, capture)
        if found is None:
            return arm.child_not_found(f"{parent['id']}/packetCaptures/{capture}")

        def finish() -> None:
            status = capture_status(found)
            if status["packetCaptureStatus"] in ("NotStarted", "Running"):
                status.update(packetCaptureStatus="Stopped", stopReason="ManualStop")

        operation = start("StopPacketCaptureOperation", found, location=parent.get("location"), finish=finish)
        return arm.accepted(request, cloud, operation, 202, location=True)

    @route("POST", capture_base + "/queryStatus")
    async def query_capture(request: Request, subscription: str, group: str, watcher: str, capture: str) -> Response:
        parent, failure = parent_watcher(subscription, group, watcher)
        if failure is not None:
            return failure
        assert parent is not None
        found = find_capture(parent, capture)
        if found is None:
            return arm.child_not_found(f"{parent['id']}/packetCaptures/{capture}")
        status = capture_status(found)
        body: Json = {"name": found["name"], "id": found["id"]}
        if status.get("captureStartTime"):
            body["captureStartTime"] = status["captureStartTime"]
        body["packetCaptureStatus"] = status["packetCaptureStatus"]
        body["stopReason"] = status.get("stopReason", "")
        body["packetCaptureError"] = list(status.get("packetCaptureError", []))
        return JSONResponse(body)
