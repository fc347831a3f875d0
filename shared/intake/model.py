"""The canonical incident every dialect is normalised into. Entities keep their stable identifiers (aadUserId,
azureID/resourceId, address, hashes) so later steps resolve targets by id, never by display name."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field
from pydantic.alias_generators import to_camel

from shared.armid import ArmId

VM_TYPE = "Microsoft.Compute/virtualMachines"


class Dialect(StrEnum):
    SENTINEL_INCIDENT_TRIGGER = "sentinel.incident_trigger"  # Logic App "Microsoft Sentinel incident" trigger body
    SENTINEL_INCIDENT_RESOURCE = "sentinel.incident_resource"  # ARM GET of an incident (+ entities/alerts lists)
    SECURITY_ALERT = (
        "security_alert"  # PascalCase SecurityAlert: legacy Sentinel alert trigger, Defender workflow automation
    )
    # Logic App "Microsoft Sentinel entity" trigger body: one entity and the incident it was run from, if any
    SENTINEL_ENTITY_TRIGGER = "sentinel.entity_trigger"
    DEFENDER_ALERT_RESOURCE = "defender.alert_resource"  # Defender for Cloud alerts REST resource / continuous export
    DEFENDER_ACTIVITY_LOG = "defender.activity_log"  # Defender alert as an Azure Activity Log event


# The dialects that carry a Sentinel incident (with its ARM id), as opposed to an alert.
SENTINEL_INCIDENT_DIALECTS = frozenset(
    {Dialect.SENTINEL_INCIDENT_TRIGGER, Dialect.SENTINEL_INCIDENT_RESOURCE, Dialect.SENTINEL_ENTITY_TRIGGER}
)


class Envelope(StrEnum):
    NONE = "none"
    EVENT_GRID = "eventgrid"
    CLOUD_EVENTS = "cloudevents"


class Severity(StrEnum):
    HIGH = "High"
    MEDIUM = "Medium"
    LOW = "Low"
    INFORMATIONAL = "Informational"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, validate_by_name=True)


class EntityBase(_Model):
    id: str = Field(description="The entity's id in the payload: its ARM id, or its JSON.NET $id")
    friendly_name: str = ""
    properties: dict[str, Any] = Field(default_factory=dict, description="All properties as received")


class AccountEntity(EntityBase):
    kind: Literal["Account"] = "Account"
    aad_user_id: str | None = None
    aad_tenant_id: str | None = None
    account_name: str | None = None
    upn_suffix: str | None = None
    display_name: str | None = None
    sid: str | None = None
    nt_domain: str | None = None
    dns_domain: str | None = None
    object_guid: str | None = None
    host_ref: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def upn(self) -> str | None:
        """accountName@upnSuffix, as Microsoft's playbooks build it; None when either part is missing."""
        if self.account_name and self.upn_suffix and "@" not in self.account_name:
            return f"{self.account_name}@{self.upn_suffix}"
        if self.account_name and "@" in self.account_name:
            return self.account_name
        return None


class HostEntity(EntityBase):
    kind: Literal["Host"] = "Host"
    host_name: str | None = None
    dns_domain: str | None = None
    nt_domain: str | None = None
    net_bios_name: str | None = None
    azure_id: str | None = None
    oms_agent_id: str | None = None
    os_family: str | None = None
    os_version: str | None = None
    fqdn: str | None = None
    mde_device_id: str | None = None
    aad_device_id: str | None = None


class IpEntity(EntityBase):
    kind: Literal["Ip"] = "Ip"
    address: str
    country: str | None = None


class AzureResourceEntity(EntityBase):
    kind: Literal["AzureResource"] = "AzureResource"
    resource_id: str
    subscription_id: str | None = None


class FileEntity(EntityBase):
    kind: Literal["File"] = "File"
    directory: str | None = None
    file_name: str | None = None
    file_hash_refs: tuple[str, ...] = ()
    host_ref: str | None = None


class FileHashEntity(EntityBase):
    kind: Literal["FileHash"] = "FileHash"
    algorithm: str
    hash_value: str


class UrlEntity(EntityBase):
    kind: Literal["Url"] = "Url"
    url: str


class DnsResolutionEntity(EntityBase):
    kind: Literal["DnsResolution"] = "DnsResolution"
    domain_name: str | None = None
    ip_address_refs: tuple[str, ...] = ()


class ProcessEntity(EntityBase):
    kind: Literal["Process"] = "Process"
    process_id: str | None = None
    command_line: str | None = None
    creation_time_utc: str | None = None
    image_file_ref: str | None = None
    account_ref: str | None = None
    host_ref: str | None = None


class MailMessageEntity(EntityBase):
    kind: Literal["MailMessage"] = "MailMessage"
    network_message_id: str | None = None
    internet_message_id: str | None = None
    sender: str | None = None
    recipient: str | None = None
    subject: str | None = None


class MailboxEntity(EntityBase):
    kind: Literal["Mailbox"] = "Mailbox"
    mailbox_primary_address: str | None = None
    display_name: str | None = None
    upn: str | None = None
    aad_user_id: str | None = None


class CloudApplicationEntity(EntityBase):
    kind: Literal["CloudApplication"] = "CloudApplication"
    app_id: str | None = None
    name: str | None = None
    instance_name: str | None = None
    service_principal_id: str | None = None  # the workload identity's object id, when the alert names it


class SecurityGroupEntity(EntityBase):
    kind: Literal["SecurityGroup"] = "SecurityGroup"
    object_guid: str | None = None
    sid: str | None = None
    distinguished_name: str | None = None


class RegistryKeyEntity(EntityBase):
    kind: Literal["RegistryKey"] = "RegistryKey"
    hive: str | None = None
    key: str | None = None


class RegistryValueEntity(EntityBase):
    kind: Literal["RegistryValue"] = "RegistryValue"
    name: str | None = None
    value: str | None = None
    value_type: str | None = None
    key_ref: str | None = None


class MalwareEntity(EntityBase):
    kind: Literal["Malware"] = "Malware"
    name: str | None = None
    category: str | None = None


class IoTDeviceEntity(EntityBase):
    kind: Literal["IoTDevice"] = "IoTDevice"
    device_id: str | None = None
    device_name: str | None = None
    device_type: str | None = None
    ip_address_ref: str | None = None


class UnknownEntity(EntityBase):
    """A kind Riposte has no type for (Nic, MailCluster, network-connection, ...): kept, never dropped."""

    kind: str


Entity = (
    AccountEntity
    | HostEntity
    | IpEntity
    | AzureResourceEntity
    | FileEntity
    | FileHashEntity
    | UrlEntity
    | DnsResolutionEntity
    | ProcessEntity
    | MailMessageEntity
    | MailboxEntity
    | CloudApplicationEntity
    | SecurityGroupEntity
    | RegistryKeyEntity
    | RegistryValueEntity
    | MalwareEntity
    | IoTDeviceEntity
    | UnknownEntity
)


class VirtualMachine(_Model):
    """A virtual machine the incident names, derived from its Host (azureID) and AzureResource (resourceId) entities:
    the kind a playbook's `for_each: VirtualMachine` runs over, one per distinct ARM id."""

    kind: Literal["VirtualMachine"] = "VirtualMachine"
    id: str = Field(description="The VM's ARM id, as the first entity naming it spelled it")
    resource_id: str
    name: str


def virtual_machine_name(resource_id: str) -> str | None:
    """The name of the VM an ARM id names (/subscriptions/S/resourceGroups/G/providers/Microsoft.Compute/
    virtualMachines/NAME, any casing), or None for any other id, a VM's child resources included."""
    try:
        return ArmId.parse(resource_id, VM_TYPE).name
    except ValueError:
        return None


def _virtual_machines(entities: tuple[EntityBase, ...]) -> tuple[VirtualMachine, ...]:
    found: dict[str, VirtualMachine] = {}
    for entity in entities:
        if isinstance(entity, HostEntity):
            candidate = entity.azure_id
        elif isinstance(entity, AzureResourceEntity):
            candidate = entity.resource_id
        else:
            continue
        name = virtual_machine_name(candidate) if candidate else None
        if candidate and name:
            arm_id = candidate.strip().rstrip("/")
            found.setdefault(arm_id.lower(), VirtualMachine(id=arm_id, resource_id=arm_id, name=name))
    return tuple(found.values())


class Workspace(_Model):
    subscription_id: str | None = None
    resource_group: str | None = None
    name: str | None = None
    customer_id: str | None = Field(default=None, description="The Log Analytics workspace GUID used by KQL queries")


class Alert(_Model):
    id: str = Field(description="ARM id of the alert, or its system alert id when it has none")
    system_alert_id: str | None = None
    title: str = ""
    alert_type: str | None = None
    severity: Severity | None = None
    status: str | None = None
    product_name: str | None = None
    tactics: tuple[str, ...] = ()
    techniques: tuple[str, ...] = ()
    compromised_entity: str | None = None
    resource_ids: tuple[str, ...] = ()
    start_time: datetime | None = None
    end_time: datetime | None = None


class Incident(_Model):
    dialect: Dialect
    envelope: Envelope = Envelope.NONE
    delivery_id: str | None = Field(
        default=None, description="What identifies this delivery for dedup: eventUniqueId, Event Grid event id"
    )
    arm_id: str | None = Field(default=None, description="ARM id of the Sentinel incident (or of the Defender alert)")
    name: str | None = None
    incident_number: int | None = None
    workspace: Workspace | None = None
    title: str
    description: str = ""
    severity: Severity
    status: str
    tactics: tuple[str, ...] = ()
    techniques: tuple[str, ...] = ()
    provider: str = ""
    analytic_rule_ids: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    created_time: datetime | None = None
    alerts: tuple[Alert, ...] = ()
    entities: tuple[Entity, ...] = ()
    raw: dict[str, Any] | list[Any] = Field(default_factory=dict, repr=False)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def virtual_machines(self) -> tuple[VirtualMachine, ...]:
        """Every distinct VM the entities name by ARM id (Host.azureID, a VM's AzureResource.resourceId)."""
        return _virtual_machines(self.entities)

    @property
    def is_sentinel_incident(self) -> bool:
        return self.dialect in SENTINEL_INCIDENT_DIALECTS

    def summary(self) -> dict[str, Any]:
        """What intake answers with: everything but the raw payload. Made once per incident (matching, planning and
        the response all read it), so it is shared: read it, do not change it."""
        return self._summary

    @cached_property
    def _summary(self) -> dict[str, Any]:
        body = self.model_dump(mode="json", exclude={"raw"}, by_alias=True)
        body["entityCounts"] = _counts(e.kind for e in self.entities)
        return body


def _counts(kinds: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for kind in kinds:
        counts[kind] = counts.get(kind, 0) + 1
    return counts
