"""Entities from any of the three dialects into typed entities.

Dialects (docs/reference/payloads.md):
- ARM / incident trigger: {"id", "kind": "Account", "properties": {camelCase}}; references are ARM entity ids.
- Log Analytics SecurityAlert / legacy alert trigger: {"$id", "Type": "account", PascalCase props}, {"$ref": "2"}.
- Defender for Cloud API: {"$id", "type": "ip", camelCase props}, {"$ref": ...}.
Kinds and property names are matched case-insensitively; JSON.NET $id/$ref back-references are resolved into entity
ids; entities defined inline inside another (Account.Host) are hoisted into the list.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from shared.intake import model
from shared.intake.errors import IntakeError

KINDS: dict[str, type[model.EntityBase]] = {
    "account": model.AccountEntity,
    "host": model.HostEntity,
    "ip": model.IpEntity,
    "azureresource": model.AzureResourceEntity,
    "file": model.FileEntity,
    "filehash": model.FileHashEntity,
    "url": model.UrlEntity,
    "dnsresolution": model.DnsResolutionEntity,
    "dns": model.DnsResolutionEntity,
    "process": model.ProcessEntity,
    "mailmessage": model.MailMessageEntity,
    "mailbox": model.MailboxEntity,
    "cloudapplication": model.CloudApplicationEntity,
    "securitygroup": model.SecurityGroupEntity,
    "registrykey": model.RegistryKeyEntity,
    "registryvalue": model.RegistryValueEntity,
    "malware": model.MalwareEntity,
    "iotdevice": model.IoTDeviceEntity,
}

# canonical field -> property names that carry it, lower-cased, in order of preference. Dotted names look inside
# additionalData-style sub-objects. Fields ending in _ref(s) hold references to other entities.
FIELDS: dict[type[model.EntityBase], dict[str, tuple[str, ...]]] = {
    model.AccountEntity: {
        "aad_user_id": ("aaduserid", "aadid"),
        "aad_tenant_id": ("aadtenantid",),
        "account_name": ("accountname", "name"),
        "upn_suffix": ("upnsuffix",),
        "display_name": ("displayname",),
        "sid": ("sid",),
        "nt_domain": ("ntdomain",),
        "dns_domain": ("dnsdomain",),
        "object_guid": ("objectguid",),
        "host_ref": ("hostentityid", "host"),
    },
    model.HostEntity: {
        "host_name": ("hostname",),
        "dns_domain": ("dnsdomain",),
        "nt_domain": ("ntdomain",),
        "net_bios_name": ("netbiosname",),
        "azure_id": ("azureid",),
        "oms_agent_id": ("omsagentid",),
        "os_family": ("osfamily",),
        "os_version": ("osversion",),
        "fqdn": ("fqdn", "additionaldata.fqdn"),
        "mde_device_id": ("mdatpdeviceid", "additionaldata.mdatpdeviceid"),
        "aad_device_id": ("aaddeviceid", "additionaldata.aaddeviceid"),
    },
    model.IpEntity: {"address": ("address",), "country": ("location.countrycode", "location.countryname")},
    model.AzureResourceEntity: {
        "resource_id": ("resourceid", "azureresourceid", "azureid"),
        "subscription_id": ("subscriptionid",),
    },
    model.FileEntity: {
        "directory": ("directory",),
        "file_name": ("filename", "name"),
        "file_hash_refs": ("filehashentityids", "filehashes"),
        "host_ref": ("hostentityid", "host"),
    },
    model.FileHashEntity: {"algorithm": ("algorithm",), "hash_value": ("hashvalue", "value")},
    model.UrlEntity: {"url": ("url",)},
    model.DnsResolutionEntity: {
        "domain_name": ("domainname",),
        "ip_address_refs": ("ipaddressentityids", "ipaddresses"),
    },
    model.ProcessEntity: {
        "process_id": ("processid",),
        "command_line": ("commandline",),
        "creation_time_utc": ("creationtimeutc",),
        "image_file_ref": ("imagefileentityid", "imagefile"),
        "account_ref": ("accountentityid", "account"),
        "host_ref": ("hostentityid", "host"),
    },
    model.MailMessageEntity: {
        "network_message_id": ("networkmessageid",),
        "internet_message_id": ("internetmessageid",),
        "sender": ("sender", "p1sender", "p2sender"),
        "recipient": ("recipient",),
        "subject": ("subject",),
    },
    model.MailboxEntity: {
        "mailbox_primary_address": ("mailboxprimaryaddress",),
        "display_name": ("displayname",),
        "upn": ("upn",),
        "aad_user_id": ("aadid", "aaduserid"),
    },
    model.CloudApplicationEntity: {
        "app_id": ("appid",),
        "name": ("name", "appname"),
        "instance_name": ("instancename",),
        "service_principal_id": (
            "serviceprincipalid",
            "serviceprincipalobjectid",
            "additionaldata.serviceprincipalid",
            "additionaldata.serviceprincipalobjectid",
        ),
    },
    model.SecurityGroupEntity: {
        "object_guid": ("objectguid",),
        "sid": ("sid",),
        "distinguished_name": ("distinguishedname",),
    },
    model.RegistryKeyEntity: {"hive": ("hive",), "key": ("key",)},
    model.RegistryValueEntity: {
        "name": ("name",),
        "value": ("value",),
        "value_type": ("valuetype",),
        "key_ref": ("keyentityid", "key"),
    },
    model.MalwareEntity: {"name": ("malwarename", "name"), "category": ("category",)},
    model.IoTDeviceEntity: {
        "device_id": ("deviceid",),
        "device_name": ("devicename",),
        "device_type": ("devicetype",),
        "ip_address_ref": ("ipaddressentityid", "ipaddress"),
    },
}

_SKIP_KEYS = {"$id", "type", "kind"}


def kind_key(raw_kind: str) -> str:
    return raw_kind.replace("-", "").replace("_", "").lower()


def _lower_keys(obj: dict[str, Any]) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in obj.items()}


class _Resolver:
    """Collects every object carrying a JSON.NET "$id" so "$ref"s anywhere can be resolved."""

    def __init__(self, items: list[Any]) -> None:
        self.by_ref: dict[str, dict[str, Any]] = {}
        stack: list[Any] = list(items)
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                ref_id = node.get("$id")
                if isinstance(ref_id, str | int) and len(node) > 1:
                    self.by_ref.setdefault(str(ref_id), node)
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)

    def deref(self, node: Any, target: str) -> Any:
        if isinstance(node, dict) and set(node) == {"$ref"}:
            found = self.by_ref.get(str(node["$ref"]))
            if found is None:
                raise IntakeError(
                    "UnresolvedReference", f"$ref '{node['$ref']}' names no entity with that $id.", target
                )
            return found
        return node


def parse_entities(items: Any, *, target: str, max_entities: int) -> list[model.Entity]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise IntakeError("InvalidType", "Entities must be a JSON array.", target)
    if len(items) > max_entities:
        raise IntakeError("TooManyEntities", f"{len(items)} entities; the limit is {max_entities}.", target, status=400)
    parser = _EntityParser(_Resolver(items), max_entities)
    for index, item in enumerate(items):
        parser.add(item, f"{target}[{index}]")
    return parser.entities


class _EntityParser:
    def __init__(self, resolver: _Resolver, max_entities: int) -> None:
        self.resolver = resolver
        self.max_entities = max_entities
        self.entities: list[model.Entity] = []
        self._seen: dict[int, str] = {}  # id(raw dict) -> entity id, so a $ref'd entity is parsed once

    def add(self, item: Any, target: str) -> str:
        item = self.resolver.deref(item, target)
        if not isinstance(item, dict):
            raise IntakeError("InvalidType", "An entity must be a JSON object.", target)
        if id(item) in self._seen:
            return self._seen[id(item)]
        raw_kind = item.get("kind") or item.get("Kind") or item.get("Type") or item.get("type")
        if not isinstance(raw_kind, str) or not raw_kind:
            raise IntakeError("MissingField", "An entity needs a 'kind' (or 'type').", target)
        arm_style = isinstance(item.get("properties"), dict)
        props: dict[str, Any] = (
            item["properties"] if arm_style else {k: v for k, v in item.items() if k not in _SKIP_KEYS}
        )
        props_target = f"{target}.properties" if arm_style else target
        if arm_style:
            entity_id = str(item.get("id") or item.get("name") or f"{target}")
        else:
            entity_id = f"${item['$id']}" if "$id" in item else target
        self._seen[id(item)] = entity_id
        if len(self._seen) > self.max_entities:
            raise IntakeError(
                "TooManyEntities", f"More than {self.max_entities} entities (counting nested ones).", target
            )
        cls = KINDS.get(kind_key(raw_kind))
        values: dict[str, Any] = {"id": entity_id, "properties": props}
        lowered = _lower_keys(props)
        friendly = lowered.get("friendlyname")
        if cls is None:
            values["kind"] = raw_kind
        else:
            for field, aliases in FIELDS[cls].items():
                found = self._field(lowered, aliases, field, props_target)
                if found is not None:
                    values[field] = found
        values["friendly_name"] = str(friendly) if isinstance(friendly, str | int) else _default_name(values)
        try:
            entity = (cls or model.UnknownEntity)(**values)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = str(error["loc"][0]) if error["loc"] else ""
            raise IntakeError(
                "MissingField" if error["type"] == "missing" else "InvalidValue",
                f"{raw_kind} entity: {field} {error['msg'].lower()}.",
                f"{props_target}.{_camel(field)}",
            ) from exc
        self.entities.append(entity)  # type: ignore[arg-type]
        return entity_id

    def _field(self, lowered: dict[str, Any], aliases: tuple[str, ...], field: str, target: str) -> Any:
        for alias in aliases:
            value = _dotted(lowered, alias)
            if value is None:
                continue
            if field.endswith("_refs"):
                if not isinstance(value, list):
                    raise IntakeError("InvalidType", f"{alias} must be an array.", f"{target}.{alias}")
                return tuple(self._ref(v, f"{target}.{alias}[{i}]") for i, v in enumerate(value))
            if field.endswith("_ref"):
                return self._ref(value, f"{target}.{alias}")
            return _scalar(value, f"{target}.{alias}")
        return None

    def _ref(self, value: Any, target: str) -> str:
        """A reference is an ARM entity id string, a {"$ref"} or an inline entity (which is hoisted)."""
        if isinstance(value, str):
            return value
        if isinstance(value, dict):
            return self.add(value, target)
        raise IntakeError("InvalidType", "An entity reference must be a string or an object.", target)


def _dotted(lowered: dict[str, Any], alias: str) -> Any:
    if "." not in alias:
        return lowered.get(alias)
    head, rest = alias.split(".", 1)
    inner = lowered.get(head)
    return _dotted(_lower_keys(inner), rest) if isinstance(inner, dict) else None


def _scalar(value: Any, target: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise IntakeError("InvalidType", "Expected a string.", target)
    return str(value)


def _camel(field: str) -> str:
    head, *rest = field.split("_")
    return head + "".join(part.title() for part in rest)


_NAME_FIELDS: tuple[str, ...] = (
    "account_name",
    "host_name",
    "address",
    "resource_id",
    "file_name",
    "hash_value",
    "url",
    "domain_name",
    "mailbox_primary_address",
    "name",
    "subject",
    "device_name",
)


def _default_name(values: dict[str, Any]) -> str:
    for field in _NAME_FIELDS:
        if isinstance(values.get(field), str):
            return str(values[field])
    return ""
