"""Deterministic Log Analytics rows for the emulated tenant, built from the tenant document.

Rules (the contract with seed.expand and the admin API):

* ``logAnalytics.generate`` holds generator settings (``seed``, ``days``, ...). Generated rows are NEVER stored in the
  tenant document: the Log Analytics service calls :func:`generate` when it (re)builds its database for a tenant
  generation, so ``GET /_admin/tenant`` stays small and a ``PUT`` regenerates them. seed.expand has nothing to do.
* ``logAnalytics.tables`` holds explicit rows, ``{TableName: [row, ...]}``; they stay in the document and are appended
  to the generated ones. A row may omit columns (null), give ``TimeGenerated`` as a datetime, an ISO string, ``now``,
  ``now-2h`` or ``ago(2h)``, and may name a table this module does not know (a custom ``*_CL`` table): its columns
  are inferred from the values.
* Timestamps are relative to ``now`` (when the tenant was loaded) and cover the last ``days`` days; background
  activity keeps to office hours of the calendar days before ``now``. The same seed, tenant and ``now`` give the
  same rows.
* Users come from ``graph.users``, machines from ``arm.resources`` (VMs, their NICs and public IPs), incidents and
  alerts from ``sentinel.incidents``, the workspace from the Log Analytics workspace resource. Each section may be
  missing: the fixed demo facts stand in for it.

The stories told for the demo: adele.vance gets a password spray from several foreign IPs (203.0.113.66 and
198.51.100.23 among them) over the last 24 h, then a successful risky sign-in from an anonymizing IP (her
anonymizedIPAddress risk detection when Graph has one); 203.0.113.66 also sprays two other accounts, is denied by the
perimeter firewall (CommonSecurityLog) towards vm-web-01 and is the source of logon failures there (SecurityEvent
4625, and sshd lines in Syslog when the VM runs Linux). Every Graph risk detection gets its sign-in and every
Sentinel incident its alerts (SecurityAlert, entities in the legacy dialect), its SecurityIncident row and sign-ins
for the accounts and addresses it names. Everyone else has normal background activity.
"""

from __future__ import annotations

import json
import random
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

DEMO_TENANT_ID = "6f1d3c2e-5a4b-4c8d-9e7f-0a1b2c3d4e5f"
DEMO_DOMAIN = "contoso.com"
DEMO_SUBSCRIPTION = "8c2b5f0e-3d4a-4b6c-9a1e-7f2d3c4b5a60"
DEMO_WORKSPACE_ID = "2b7e4c1d-9f3a-4e5b-8c6d-1a0f9e8d7c6b"
DEMO_WORKSPACE_GROUP = "rg-soc"
DEMO_WORKSPACE_NAME = "law-sentinel"
DEFAULT_SEED = 20240501
DEFAULT_DAYS = 7

SPRAY_IP = "203.0.113.66"
SECOND_SPRAY_IP = "198.51.100.23"


def _columns(spec: str) -> tuple[tuple[str, str], ...]:
    """'Name:type Name:type ...' -> ((name, kusto type), ...), so each schema reads like Microsoft's table reference."""
    return tuple((name, kind) for name, kind in (item.split(":") for item in spec.split()))


# Column names and Kusto types as in Microsoft's table reference (a subset of each table's columns, in its order
# where it matters). Every table also gets TenantId (the workspace id) and Type (the table name).
TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "SigninLogs": _columns(
        """TenantId:string SourceSystem:string TimeGenerated:datetime ResourceId:string OperationName:string
        OperationVersion:string Category:string ResultType:string ResultSignature:string ResultDescription:string
        DurationMs:long CorrelationId:string Resource:string ResourceGroup:string ResourceProvider:string
        Identity:string Level:string Location:string AlternateSignInName:string AppDisplayName:string AppId:string
        AuthenticationDetails:string AuthenticationRequirement:string AutonomousSystemNumber:string
        ClientAppUsed:string ConditionalAccessPolicies:dynamic ConditionalAccessStatus:string
        CreatedDateTime:datetime DeviceDetail:dynamic HomeTenantId:string Id:string IPAddress:string IsInteractive:bool
        IsRisky:bool LocationDetails:dynamic ResourceDisplayName:string ResourceIdentity:string ResourceTenantId:string
        RiskDetail:string RiskEventTypes:string RiskEventTypes_V2:string RiskLevelAggregated:string
        RiskLevelDuringSignIn:string RiskState:string Status:dynamic TokenIssuerType:string UserAgent:string
        UserDisplayName:string UserId:string UserPrincipalName:string UserType:string Type:string"""
    ),
    "AuditLogs": _columns(
        """TenantId:string SourceSystem:string TimeGenerated:datetime ResourceId:string OperationName:string
        OperationVersion:string Category:string ResultType:string ResultSignature:string ResultDescription:string
        DurationMs:long CorrelationId:string Resource:string ResourceGroup:string ResourceProvider:string
        Identity:string Level:string Location:string AdditionalDetails:dynamic Id:string InitiatedBy:dynamic
        LoggedByService:string Result:string ResultReason:string TargetResources:dynamic AADTenantId:string
        ActivityDisplayName:string ActivityDateTime:datetime AADOperationType:string Type:string"""
    ),
    "SecurityAlert": _columns(
        """TenantId:string TimeGenerated:datetime DisplayName:string AlertName:string AlertSeverity:string
        Description:string ProviderName:string VendorName:string VendorOriginalId:string SystemAlertId:string
        ResourceId:string SourceComputerId:string AlertType:string ConfidenceLevel:string ConfidenceScore:real
        IsIncident:bool StartTime:datetime EndTime:datetime ProcessingEndTime:datetime RemediationSteps:string
        ExtendedProperties:string Entities:string SourceSystem:string WorkspaceSubscriptionId:string
        WorkspaceResourceGroup:string ExtendedLinks:string ProductName:string ProductComponentName:string
        AlertLink:string Status:string CompromisedEntity:string Tactics:string Techniques:string
        SubTechniques:string Type:string"""
    ),
    "SecurityIncident": _columns(
        """TenantId:string TimeGenerated:datetime IncidentName:string Title:string Description:string Severity:string
        Status:string Classification:string ClassificationComment:string ClassificationReason:string Owner:dynamic
        ProviderName:string ProviderIncidentId:string FirstActivityTime:datetime LastActivityTime:datetime
        FirstModifiedTime:datetime LastModifiedTime:datetime CreatedTime:datetime ClosedTime:datetime
        IncidentNumber:int RelatedAnalyticRuleIds:dynamic AlertIds:dynamic BookmarkIds:dynamic Comments:dynamic
        Tasks:dynamic Labels:dynamic IncidentUrl:string AdditionalData:dynamic ModifiedBy:string SourceSystem:string
        Type:string"""
    ),
    "AzureActivity": _columns(
        """TenantId:string SourceSystem:string CallerIpAddress:string CategoryValue:string CorrelationId:string
        Authorization:string Authorization_d:dynamic Level:string OperationNameValue:string Properties:string
        Properties_d:dynamic Caller:string EventDataId:string EventSubmissionTimestamp:datetime HTTPRequest:string
        OperationId:string ResourceGroup:string ResourceProviderValue:string ActivityStatusValue:string
        ActivitySubstatusValue:string Hierarchy:string TimeGenerated:datetime SubscriptionId:string
        OperationName:string ActivityStatus:string ActivitySubstatus:string Category:string ResourceId:string
        ResourceProvider:string Resource:string _ResourceId:string _SubscriptionId:string Type:string"""
    ),
    "Heartbeat": _columns(
        """TenantId:string SourceSystem:string TimeGenerated:datetime ComputerIP:string Computer:string Category:string
        OSType:string OSName:string OSMajorVersion:string OSMinorVersion:string Version:string SCAgentChannel:string
        IsGatewayInstalled:bool RemoteIPLongitude:real RemoteIPLatitude:real RemoteIPCountry:string
        SubscriptionId:string ResourceGroup:string ResourceProvider:string Resource:string ResourceId:string
        ResourceType:string ComputerEnvironment:string Solutions:string VMUUID:string ComputerPrivateIPs:dynamic
        _ResourceId:string _SubscriptionId:string Type:string"""
    ),
    "SecurityEvent": _columns(
        """TenantId:string TimeGenerated:datetime SourceSystem:string Account:string AccountType:string Computer:string
        EventSourceName:string Channel:string Task:int Level:string EventID:int Activity:string
        AuthenticationPackageName:string FailureReason:string IpAddress:string IpPort:string LogonProcessName:string
        LogonType:int LogonTypeName:string Process:string ProcessName:string Status:string SubStatus:string
        SubjectAccount:string SubjectDomainName:string SubjectLogonId:string SubjectUserName:string
        SubjectUserSid:string TargetAccount:string TargetDomainName:string TargetLogonId:string TargetUserName:string
        TargetUserSid:string WorkstationName:string _ResourceId:string _SubscriptionId:string Type:string"""
    ),
    "CommonSecurityLog": _columns(
        """TenantId:string TimeGenerated:datetime DeviceVendor:string DeviceProduct:string DeviceVersion:string
        DeviceEventClassID:string Activity:string LogSeverity:string OriginalLogSeverity:string
        AdditionalExtensions:string DeviceAction:string SimplifiedDeviceAction:string ApplicationProtocol:string
        EventCount:int DestinationHostName:string DestinationIP:string DestinationPort:int
        DeviceInboundInterface:string DeviceOutboundInterface:string Protocol:string SourceIP:string SourcePort:int
        SentBytes:long ReceivedBytes:long CommunicationDirection:string Computer:string DeviceName:string
        DeviceAddress:string RemoteIP:string RemotePort:string MaliciousIP:string MaliciousIPCountry:string
        ThreatSeverity:int IndicatorThreatType:string ThreatDescription:string SourceSystem:string
        _ResourceId:string Type:string"""
    ),
    "Syslog": _columns(
        """TenantId:string SourceSystem:string TimeGenerated:datetime Computer:string EventTime:datetime
        Facility:string HostName:string SeverityLevel:string SyslogMessage:string ProcessID:int HostIP:string
        ProcessName:string CollectorHostName:string _ResourceId:string _SubscriptionId:string Type:string"""
    ),
    "ThreatIntelligenceIndicator": _columns(
        """TenantId:string TimeGenerated:datetime SourceSystem:string Action:string AzureTenantId:string
        ConfidenceScore:real Description:string ExpirationDateTime:datetime ExternalIndicatorId:string
        IndicatorId:string ThreatType:string Active:bool NetworkIP:string NetworkSourceIP:string DomainName:string
        Url:string TrafficLightProtocolLevel:string Tags:string Type:string"""
    ),
    # Columns exactly as the published query example (tests/fixtures/published/log_analytics/query_post_v1.json).
    "Usage": _columns(
        """TenantId:string Computer:string TimeGenerated:datetime SourceSystem:string StartTime:datetime
        EndTime:datetime ResourceUri:string LinkedResourceUri:string DataType:string Solution:string
        BatchesWithinSla:long BatchesOutsideSla:long BatchesCapped:long TotalBatches:long AvgLatencyInSeconds:real
        Quantity:real QuantityUnit:string IsBillable:bool MeterId:string LinkedMeterId:string Type:string"""
    ),
}

Row = dict[str, Any]
Tables = dict[str, list[Row]]


@dataclass(frozen=True)
class Place:
    city: str
    state: str
    country: str  # two-letter code, as SigninLogs.Location
    country_name: str
    latitude: float
    longitude: float
    asn: str

    def location_details(self) -> dict[str, Any]:
        return {
            "city": self.city,
            "state": self.state,
            "countryOrRegion": self.country,
            "geoCoordinates": {"latitude": self.latitude, "longitude": self.longitude},
        }


AMSTERDAM = Place("Amsterdam", "Noord-Holland", "NL", "Netherlands", 52.3676, 4.9041, "1136")
UTRECHT = Place("Utrecht", "Utrecht", "NL", "Netherlands", 52.0907, 5.1214, "33915")
LONDON = Place("London", "England", "GB", "United Kingdom", 51.5072, -0.1276, "2856")
MOSCOW = Place("Moscow", "Moscow", "RU", "Russia", 55.7558, 37.6173, "8359")
LAGOS = Place("Lagos", "Lagos", "NG", "Nigeria", 6.5244, 3.3792, "37148")
SAO_PAULO = Place("Sao Paulo", "Sao Paulo", "BR", "Brazil", -23.5505, -46.6333, "28573")
HANOI = Place("Hanoi", "Ha Noi", "VN", "Vietnam", 21.0278, 105.8342, "7552")
BUCHAREST = Place("Bucharest", "Bucuresti", "RO", "Romania", 44.4268, 26.1025, "9009")

OFFICE_IPS = ("192.0.2.10", "192.0.2.11")
# (ip, place, share of adele's failed sign-ins)
SPRAY_SOURCES = (
    (SPRAY_IP, MOSCOW, 16),
    (SECOND_SPRAY_IP, LAGOS, 10),
    ("203.0.113.101", SAO_PAULO, 6),
    ("198.51.100.140", HANOI, 5),
)
ANONYMIZER = ("198.51.100.201", BUCHAREST)

# (display name, app id, resource display name, client app)
APPS = (
    ("Office 365 Exchange Online", "00000002-0000-0ff1-ce00-000000000000", "Office 365 Exchange Online", "Browser"),
    (
        "Microsoft Teams",
        "1fec8e78-bce4-4aaf-ab1b-5451cc387264",
        "Microsoft Teams Services",
        "Mobile Apps and Desktop clients",
    ),
    ("OfficeHome", "4765445b-32c6-49b0-83e6-1d93765276ca", "Office 365 SharePoint Online", "Browser"),
    ("Microsoft Office", "d3590ed6-52b3-4102-aeff-aad2292ab01c", "Microsoft Graph", "Mobile Apps and Desktop clients"),
    (
        "Outlook Mobile",
        "27922004-5251-4030-b22d-91ecd9a37ea4",
        "Office 365 Exchange Online",
        "Mobile Apps and Desktop clients",
    ),
)
AZURE_PORTAL = (
    "Azure Portal",
    "c44b4083-3bb0-49c1-b47d-974e53cbdf3c",
    "Windows Azure Service Management API",
    "Browser",
)

RESULT_DESCRIPTIONS = {
    "0": "",
    "50126": "Error validating credentials due to invalid username or password.",
    "50074": "Strong Authentication is required.",
    "50140": "This error occurred due to 'Keep me signed in' interrupt when the user was signing in.",
    "50053": "Account is locked because user tried to sign in too many times with an incorrect user ID or password.",
}

DEVICES = (
    {"operatingSystem": "Windows10", "browser": "Edge 124.0.0"},
    {"operatingSystem": "MacOs", "browser": "Safari 17.4"},
    {"operatingSystem": "Ios", "browser": "Mobile Safari 17.4"},
    {"operatingSystem": "Android", "browser": "Chrome Mobile 124.0.6367"},
)
USER_AGENTS = {
    "Windows10": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Edg/124.0.0.0",
    "MacOs": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Safari/605.1.15",
    "Ios": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Android": "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367 Mobile",
    "Linux": "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Firefox/115.0",
    "Python": "python-requests/2.31.0",
}


# --- the tenant, read from the document with the fixed demo facts as fallback ---------------------------------------


@dataclass(frozen=True)
class Person:
    upn: str
    object_id: str
    display_name: str
    privileged: bool
    user_type: str = "Member"  # Member | Guest

    @property
    def account(self) -> str:
        return self.upn.split("@", 1)[0]


@dataclass(frozen=True)
class Machine:
    name: str
    resource_id: str
    subscription_id: str
    resource_group: str
    location: str
    os_type: str  # Windows | Linux
    private_ips: tuple[str, ...]
    public_ip: str
    vm_id: str
    os_name: str = ""
    os_version: str = ""  # "22.04", "10.0"

    @property
    def windows(self) -> bool:
        return self.os_type.lower() == "windows"


DEMO_PEOPLE = (
    Person("adele.vance@contoso.com", "1c9f2b8e-4a3d-4e6f-8b1c-2d3e4f5a6b01", "Adele Vance", False),
    Person("megan.bowen@contoso.com", "1c9f2b8e-4a3d-4e6f-8b1c-2d3e4f5a6b02", "Megan Bowen", False),
    Person("alex.wilber@contoso.com", "1c9f2b8e-4a3d-4e6f-8b1c-2d3e4f5a6b03", "Alex Wilber", False),
    Person("lee.gu@contoso.com", "1c9f2b8e-4a3d-4e6f-8b1c-2d3e4f5a6b04", "Lee Gu", True),
    Person("breakglass-01@contoso.com", "1c9f2b8e-4a3d-4e6f-8b1c-2d3e4f5a6b05", "Emergency Access 01", True),
    Person("diego.siciliani@contoso.com", "1c9f2b8e-4a3d-4e6f-8b1c-2d3e4f5a6b06", "Diego Siciliani", False),
    Person("nestor.wilke@contoso.com", "1c9f2b8e-4a3d-4e6f-8b1c-2d3e4f5a6b07", "Nestor Wilke", False),
    Person("joni.sherman@contoso.com", "1c9f2b8e-4a3d-4e6f-8b1c-2d3e4f5a6b08", "Joni Sherman", False),
)


def _vm_id(group: str, name: str) -> str:
    return (
        f"/subscriptions/{DEMO_SUBSCRIPTION}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachines/{name}"
    )


DEMO_MACHINES = (
    Machine(
        "vm-web-01",
        _vm_id("rg-prod-web", "vm-web-01"),
        DEMO_SUBSCRIPTION,
        "rg-prod-web",
        "westeurope",
        "Windows",
        ("10.10.1.4",),
        "20.61.15.24",
        "5f3c1a2b-7d4e-4f60-9a8b-1c2d3e4f5a01",
    ),
    Machine(
        "vm-dev-02",
        _vm_id("rg-dev", "vm-dev-02"),
        DEMO_SUBSCRIPTION,
        "rg-dev",
        "westeurope",
        "Linux",
        ("10.20.1.4", "10.20.2.4"),
        "",
        "5f3c1a2b-7d4e-4f60-9a8b-1c2d3e4f5a02",
    ),
    Machine(
        "vm-jump-01",
        _vm_id("rg-soc", "vm-jump-01"),
        DEMO_SUBSCRIPTION,
        "rg-soc",
        "westeurope",
        "Windows",
        ("10.30.1.4",),
        "",
        "5f3c1a2b-7d4e-4f60-9a8b-1c2d3e4f5a03",
    ),
)


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    domain: str
    subscription_id: str
    workspace_id: str
    workspace_group: str
    workspace_name: str
    people: tuple[Person, ...]
    machines: tuple[Machine, ...]
    incidents: tuple[dict[str, Any], ...]
    detections: tuple[dict[str, Any], ...]  # graph.riskDetections

    @property
    def workspace_resource_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.workspace_group}"
            f"/providers/Microsoft.OperationalInsights/workspaces/{self.workspace_name}"
        )

    def person(self, account: str) -> Person | None:
        return next((p for p in self.people if p.account.lower() == account), None)

    def person_by_id(self, object_id: str) -> Person | None:
        return next((p for p in self.people if p.object_id.lower() == object_id.lower()), None)

    @property
    def victim(self) -> Person:
        return self.person("adele.vance") or next((p for p in self.people if not p.privileged), self.people[0])


def _section(doc: dict[str, Any], *path: str) -> Any:
    node: Any = doc
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _resources(doc: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    resources = _section(doc, "arm", "resources") or []
    return [r for r in resources if isinstance(r, dict) and str(r.get("type", "")).lower() == resource_type.lower()]


def _id_part(resource_id: str, key: str) -> str:
    parts = resource_id.split("/")
    lowered = [p.lower() for p in parts]
    return parts[lowered.index(key.lower()) + 1] if key.lower() in lowered[:-1] else ""


def read_tenant(doc: dict[str, Any]) -> Tenant:
    tenant = _section(doc, "tenant") or {}
    people = tuple(
        Person(
            str(u["userPrincipalName"]),
            str(u.get("id", "")),
            str(u.get("displayName") or u["userPrincipalName"]),
            _is_privileged(doc, str(u.get("id", ""))),
            str(u.get("userType") or "Member"),
        )
        for u in (_section(doc, "graph", "users") or [])
        if isinstance(u, dict) and u.get("userPrincipalName")
    )
    workspaces = _resources(doc, "Microsoft.OperationalInsights/workspaces")
    workspace = next(
        (w for w in workspaces if str(_section(w, "properties", "customerId") or "") == DEMO_WORKSPACE_ID),
        workspaces[0] if workspaces else None,
    )
    workspace_id, workspace_group, workspace_name, subscription = (
        DEMO_WORKSPACE_ID,
        DEMO_WORKSPACE_GROUP,
        DEMO_WORKSPACE_NAME,
        DEMO_SUBSCRIPTION,
    )
    if workspace is not None:
        workspace_id = str(_section(workspace, "properties", "customerId") or workspace_id)
        workspace_name = str(workspace.get("name") or workspace_name)
        workspace_group = _id_part(str(workspace.get("id", "")), "resourceGroups") or workspace_group
        subscription = _id_part(str(workspace.get("id", "")), "subscriptions") or subscription
    subscriptions = _section(doc, "arm", "subscriptions") or []
    if workspace is None and subscriptions and isinstance(subscriptions[0], dict):
        subscription = str(subscriptions[0].get("subscriptionId") or subscription)
    return Tenant(
        tenant_id=str(tenant.get("id") or DEMO_TENANT_ID),
        domain=str(tenant.get("domain") or DEMO_DOMAIN),
        subscription_id=subscription,
        workspace_id=workspace_id,
        workspace_group=workspace_group,
        workspace_name=workspace_name,
        people=people or DEMO_PEOPLE,
        machines=_machines(doc) or DEMO_MACHINES,
        incidents=tuple(i for i in (_section(doc, "sentinel", "incidents") or []) if isinstance(i, dict)),
        detections=tuple(d for d in (_section(doc, "graph", "riskDetections") or []) if isinstance(d, dict)),
    )


def _is_privileged(doc: dict[str, Any], object_id: str) -> bool:
    roles = _section(doc, "graph", "directoryRoles") or []
    return any(isinstance(r, dict) and object_id in (r.get("members") or []) for r in roles)


def _machines(doc: dict[str, Any]) -> tuple[Machine, ...]:
    nics = _resources(doc, "Microsoft.Network/networkInterfaces")
    public_ips = {
        str(p.get("id", "")).lower(): str(_section(p, "properties", "ipAddress") or "")
        for p in _resources(doc, "Microsoft.Network/publicIPAddresses")
    }
    machines = []
    for vm in _resources(doc, "Microsoft.Compute/virtualMachines"):
        vm_id = str(vm.get("id", ""))
        private: list[str] = []
        public = ""
        for nic in nics:
            if str(_section(nic, "properties", "virtualMachine", "id") or "").lower() != vm_id.lower():
                continue
            for config in _section(nic, "properties", "ipConfigurations") or []:
                address = _section(config, "properties", "privateIPAddress")
                if address:
                    private.append(str(address))
                public_ref = str(_section(config, "properties", "publicIPAddress", "id") or "").lower()
                public = public or public_ips.get(public_ref, "")
        os_type = str(_section(vm, "properties", "storageProfile", "osDisk", "osType") or "")
        name = str(vm.get("name") or vm_id.rsplit("/", 1)[-1])
        if not os_type:
            os_type = "Linux" if "dev" in name else "Windows"
        image = _section(vm, "properties", "storageProfile", "imageReference") or {}
        os_name, os_version = _os_of(os_type, image if isinstance(image, dict) else {})
        machines.append(
            Machine(
                name=name,
                resource_id=vm_id,
                subscription_id=_id_part(vm_id, "subscriptions") or DEMO_SUBSCRIPTION,
                resource_group=_id_part(vm_id, "resourceGroups"),
                location=str(vm.get("location") or "westeurope"),
                os_type=os_type,
                private_ips=tuple(private) or ("10.0.0.4",),
                public_ip=public,
                vm_id=str(_section(vm, "properties", "vmId") or ""),
                os_name=os_name,
                os_version=os_version,
            )
        )
    return tuple(machines)


def _os_of(os_type: str, image: dict[str, Any]) -> tuple[str, str]:
    """Heartbeat's OSName and version, from the VM's image reference."""
    if os_type.lower() == "windows":
        year = next((y for y in ("2025", "2022", "2019", "2016") if y in str(image.get("sku", ""))), "2022")
        return f"Windows Server {year} Datacenter", "10.0"
    version = re.match(r"(\d+)\.(\d+)", str(image.get("exactVersion", "")))
    name = "Ubuntu" if str(image.get("publisher", "")).lower() == "canonical" else "Linux"
    return name, f"{version.group(1)}.{version.group(2)}" if version else "22.04"


# --- generation -----------------------------------------------------------------------------------------------------


class _Writer:
    """Collects rows; every random choice goes through one seeded generator so the output is reproducible."""

    def __init__(self, tenant: Tenant, now: datetime, seed: int, days: int) -> None:
        self.tenant = tenant
        self.now = now
        self.rng = random.Random(seed)
        self.days = days
        self.rows: Tables = {table: [] for table in TABLES}
        self.signed_in: set[tuple[str, str]] = set()  # (user object id, ip) of successful sign-ins written so far
        self.breakthrough: tuple[str, datetime] = (ANONYMIZER[0], now)  # where and when the victim's password worked
        # where each address is, as far as the tenant tells (risk detections) or the stories say
        self.places: dict[str, Place] = {ip: place for ip, place, _ in SPRAY_SOURCES}
        for detection in tenant.detections:
            if detection.get("ipAddress") and isinstance(detection.get("location"), dict):
                self.places[str(detection["ipAddress"])] = _place_from(detection["location"])

    def guid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def ago(self, hours: float) -> datetime:
        """A moment `hours` before now, with sub-second noise like real ingestion timestamps."""
        return self.now - timedelta(hours=hours, microseconds=self.rng.randrange(1_000_000))

    def business_moments(self, per_day: tuple[int, int]) -> Iterator[datetime]:
        """Moments over the generated days, mostly in office hours (CET), never in the future."""
        for day in range(self.days):
            midnight = datetime.combine((self.now - timedelta(days=day)).date(), datetime.min.time(), UTC)
            weekend = midnight.weekday() >= 5
            low, high = per_day
            for _ in range(self.rng.randint(0, 1) if weekend else self.rng.randint(low, high)):
                hour = self.rng.choice((6, 7, 7, 8, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 19, 21))
                moment = midnight + timedelta(
                    hours=hour, seconds=self.rng.randrange(3600), microseconds=self.rng.randrange(1_000_000)
                )
                if moment < self.now:
                    yield moment

    def add(self, table: str, values: Row) -> None:
        self.rows[table].append({"TenantId": self.tenant.workspace_id, **values, "Type": table})


def generate(doc: dict[str, Any], now: datetime | None = None) -> Tables:
    """Every table's rows: generated ones (when the doc has logAnalytics.generate) plus the explicit ones."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    settings = _section(doc, "logAnalytics", "generate")
    tenant = read_tenant(doc)
    rows: Tables = {table: [] for table in TABLES}
    if isinstance(settings, dict):
        writer = _Writer(tenant, now, int(settings.get("seed", DEFAULT_SEED)), int(settings.get("days", DEFAULT_DAYS)))
        per_day = int(settings.get("signInsPerUserPerDay", 6))
        _background_signins(writer, per_day)
        _detection_signins(writer)
        _spray_story(writer)
        _incident_signins(writer)
        _heartbeats(writer, int(settings.get("heartbeatMinutes", 5)))
        _security_events(writer)
        _firewall(writer)
        _audit(writer)
        _activity(writer)
        _alerts_and_incidents(writer)
        _threat_intel(writer)
        _usage(writer)
        rows = writer.rows
    explicit = _section(doc, "logAnalytics", "tables") or {}
    if isinstance(explicit, dict):
        for table, items in explicit.items():
            for item in items or []:
                if isinstance(item, dict):
                    rows.setdefault(str(table), []).append(explicit_row(str(table), item, now, tenant.workspace_id))
    for table_rows in rows.values():
        table_rows.sort(key=lambda r: r.get("TimeGenerated") or now)
    return rows


def columns_for(table: str, rows: Iterable[Row]) -> list[tuple[str, str]]:
    """The table's columns: the known schema (plus any extra column explicit rows bring), or inferred from values."""
    columns = list(TABLES.get(table, (("TenantId", "string"), ("TimeGenerated", "datetime"))))
    known = {name for name, _ in columns}
    extra: dict[str, str | None] = {}  # None: only nulls seen so far
    for row in rows:
        for name, value in row.items():
            if name in known:
                continue
            if extra.get(name) is None:
                extra[name] = None if value is None else _infer_type(value)
    columns.extend((name, kind or "string") for name, kind in extra.items())
    if "Type" not in known and "Type" not in extra:
        columns.append(("Type", "string"))
    return columns


def _infer_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "real"
    if isinstance(value, datetime | date):
        return "datetime"
    if isinstance(value, dict | list):
        return "dynamic"
    return "string"


_AGO = re.compile(r"^\s*ago\(\s*(\d+(?:\.\d+)?)\s*(d|h|m|s|ms)\s*\)\s*$", re.IGNORECASE)
# the seed's own relative form (local/cloud/seed.py): now-3h, now - 2d, now+90m
_NOW_OFFSET = re.compile(r"^\s*now\s*([+-])\s*(\d+(?:\.\d+)?)\s*(d|h|m|s|ms)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_moment(value: Any, now: datetime) -> datetime | None:
    """A timestamp from the document: a datetime/date, an ISO string, 'now', 'now-2h' or 'ago(2h)'; else None."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime.combine(value, datetime.min.time(), UTC)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.lower() == "now":
        return now
    match = _AGO.match(text)
    if match:
        return now - timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()])
    offset = _NOW_OFFSET.match(text)
    if offset:
        seconds = float(offset.group(2)) * _UNIT_SECONDS[offset.group(3).lower()]
        return now + timedelta(seconds=seconds if offset.group(1) == "+" else -seconds)
    return parse_iso(text)


def parse_iso(text: str) -> datetime | None:
    """ISO 8601 with 'Z' and up to 7 fractional digits (Kusto and Graph both write 7)."""
    match = re.match(r"^(\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?)(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})?$", text)
    if not match:
        return None
    base, fraction, zone = match.groups()
    try:
        moment = datetime.fromisoformat(base + (f".{fraction[:6].ljust(6, '0')}" if fraction else ""))
    except ValueError:
        return None
    if zone and zone != "Z":
        moment = datetime.fromisoformat(f"{moment.isoformat()}{zone}")
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def explicit_row(table: str, item: dict[str, Any], now: datetime, workspace_id: str) -> Row:
    kinds = dict(TABLES.get(table, ()))
    row: Row = {"TenantId": workspace_id}
    for name, value in item.items():
        kind = kinds.get(name) or ("datetime" if name == "TimeGenerated" else None)
        if kind == "datetime" or (kind is None and isinstance(value, datetime | date)):
            row[name] = parse_moment(value, now)
        elif kind == "dynamic" and isinstance(value, str):
            try:
                row[name] = json.loads(value)
            except ValueError:
                row[name] = value
        else:
            row[name] = value
    if row.get("TimeGenerated") is None:
        row["TimeGenerated"] = now  # as ingestion does when the record carries no usable time
    row["Type"] = table
    return row


# --- SigninLogs -----------------------------------------------------------------------------------------------------


def _signin(
    w: _Writer,
    when: datetime,
    person: Person,
    ip: str,
    place: Place,
    app: tuple[str, str, str, str],
    result: str = "0",
    *,
    device: dict[str, Any] | None = None,
    risk: str = "none",
    risk_state: str = "none",
    risk_events: tuple[str, ...] = (),
    interactive: bool = True,
    conditional_access: str = "success",
    requirement: str = "multiFactorAuthentication",
    user_agent: str | None = None,
) -> None:
    tenant = w.tenant
    if result == "0":
        w.signed_in.add((person.object_id.lower(), ip))
    app_name, app_id, resource_name, client_app = app
    device = device or w.rng.choice(DEVICES)
    code = int(result)
    status: dict[str, Any] = {"errorCode": code}
    if code:
        status["failureReason"] = RESULT_DESCRIPTIONS.get(result, "Other")
    else:
        status["additionalDetails"] = "MFA requirement satisfied by claim in the token"
    correlation = w.guid()
    w.add(
        "SigninLogs",
        {
            "SourceSystem": "Azure AD",
            "TimeGenerated": when,
            "ResourceId": f"/tenants/{tenant.tenant_id}/providers/Microsoft.aadiam",
            "OperationName": "Sign-in activity",
            "OperationVersion": "1.0",
            "Category": "SignInLogs" if interactive else "NonInteractiveUserSignInLogs",
            "ResultType": result,
            "ResultSignature": "None" if code else "SUCCESS",
            "ResultDescription": RESULT_DESCRIPTIONS.get(result, ""),
            "DurationMs": 0,
            "CorrelationId": correlation,
            "Resource": "Microsoft.aadiam",
            "ResourceGroup": "Microsoft.aadiam",
            "ResourceProvider": "Microsoft.aadiam",
            "Identity": person.display_name,
            "Level": "4",
            "Location": place.country,
            "AlternateSignInName": person.upn,
            "AppDisplayName": app_name,
            "AppId": app_id,
            "AuthenticationDetails": json.dumps(
                [
                    {
                        "authenticationStepDateTime": _iso(when),
                        "authenticationMethod": "Password",
                        "succeeded": not code,
                        "authenticationStepResultDetail": status.get("failureReason", "Correct password"),
                    }
                ]
            ),
            "AuthenticationRequirement": requirement,
            "AutonomousSystemNumber": place.asn,
            "ClientAppUsed": client_app,
            "ConditionalAccessPolicies": [],
            "ConditionalAccessStatus": conditional_access if not code else "notApplied",
            "CreatedDateTime": when,
            "DeviceDetail": {"deviceId": "", "displayName": "", **device},
            "HomeTenantId": tenant.tenant_id,
            "Id": w.guid(),
            "IPAddress": ip,
            "IsInteractive": interactive,
            "IsRisky": risk not in ("none", "low"),
            "LocationDetails": place.location_details(),
            "ResourceDisplayName": resource_name,
            "ResourceIdentity": app_id,
            "ResourceTenantId": tenant.tenant_id,
            "RiskDetail": "none",
            "RiskEventTypes": json.dumps(list(risk_events)),
            "RiskEventTypes_V2": json.dumps(list(risk_events)),
            "RiskLevelAggregated": risk,
            "RiskLevelDuringSignIn": risk,
            "RiskState": risk_state,
            "Status": status,
            "TokenIssuerType": "AzureAD",
            "UserAgent": user_agent or USER_AGENTS.get(str(device.get("operatingSystem")), USER_AGENTS["Windows10"]),
            "UserDisplayName": person.display_name,
            "UserId": person.object_id,
            "UserPrincipalName": person.upn,
            "UserType": person.user_type,
        },
    )


def _background_signins(w: _Writer, per_day: int) -> None:
    for index, person in enumerate(w.tenant.people):
        if person.account.startswith("breakglass"):
            continue  # emergency access accounts must stay unused; a sign-in would be an incident of its own
        home_ip = f"192.0.2.{100 + index}"
        device = w.rng.choice(DEVICES)
        for when in w.business_moments((max(1, per_day - 3), per_day + 3)):
            at_office = w.rng.random() < 0.6
            ip, place = (w.rng.choice(OFFICE_IPS), AMSTERDAM) if at_office else (home_ip, UTRECHT)
            if person.privileged and w.rng.random() < 0.1:
                ip, place = "192.0.2.200", LONDON  # an admin on a trip
            app = AZURE_PORTAL if person.privileged and w.rng.random() < 0.4 else w.rng.choice(APPS)
            roll = w.rng.random()
            result = "50126" if roll < 0.04 else "50140" if roll < 0.07 else "50074" if roll < 0.09 else "0"
            _signin(w, when, person, ip, place, app, result, device=device, interactive=w.rng.random() < 0.7)


def _place_from(location: Any) -> Place:
    """A Place from a Graph riskDetection location or a Sentinel Ip entity location."""
    loc = location if isinstance(location, dict) else {}
    nested = loc.get("geoCoordinates")
    coordinates: dict[str, Any] = nested if isinstance(nested, dict) else loc
    country = str(loc.get("countryOrRegion") or loc.get("countryCode") or "")
    return Place(
        city=str(loc.get("city") or ""),
        state=str(loc.get("state") or ""),
        country=country,
        country_name=str(loc.get("countryName") or country),
        latitude=float(coordinates.get("latitude") or 0.0),
        longitude=float(coordinates.get("longitude") or 0.0),
        asn=str(loc.get("asn") or ""),
    )


def _device_from(user_agent: str) -> dict[str, Any]:
    systems = (("Windows NT", "Windows10"), ("iPhone", "Ios"), ("Android", "Android"), ("Mac OS X", "MacOs"))
    system = next((name for marker, name in systems if marker in user_agent), "Linux")
    browser = re.search(r"(Edg|Firefox|Chrome|Safari)/([\d.]+)", user_agent)
    label = {"Edg": "Edge"}.get(browser.group(1), browser.group(1)) if browser else "Unknown"
    return {"operatingSystem": system, "browser": f"{label} {browser.group(2)}" if browser else label}


def _additional_info(detection: dict[str, Any], key: str) -> str:
    info = detection.get("additionalInfo") or []
    if isinstance(info, str):  # Graph serves additionalInfo as a JSON-encoded string
        try:
            info = json.loads(info)
        except ValueError:
            info = []
    for item in info if isinstance(info, list) else []:
        if isinstance(item, dict) and item.get("Key") == key:
            return str(item.get("Value") or "")
    return ""


def _detection_signins(w: _Writer) -> None:
    """The sign-in behind each Identity Protection risk detection (graph.riskDetections), so Graph and the logs agree;
    an impossible-travel detection also gets the sign-in from the other place."""
    for detection in w.tenant.detections:
        if detection.get("activity", "signin") != "signin" or not detection.get("ipAddress"):
            continue
        person = w.tenant.person_by_id(str(detection.get("userId") or ""))
        when = parse_moment(detection.get("activityDateTime"), w.now)
        if person is None or when is None or when > w.now:
            continue
        agent = _additional_info(detection, "userAgent")
        _signin(
            w,
            when,
            person,
            str(detection["ipAddress"]),
            _place_from(detection.get("location")),
            APPS[2],
            "0",
            device=_device_from(agent),
            risk=str(detection.get("riskLevel") or "medium"),
            risk_state=str(detection.get("riskState") or "atRisk"),
            risk_events=(str(detection.get("riskEventType") or "generic"),),
            conditional_access="notApplied",
            requirement="singleFactorAuthentication",
            user_agent=agent or None,
        )
        try:
            related = json.loads(_additional_info(detection, "relatedLocation") or "{}")
        except ValueError:
            related = {}
        if isinstance(related, dict) and related.get("clientIP"):
            earlier = when - timedelta(minutes=40)
            _signin(w, earlier, person, str(related["clientIP"]), _place_from(related), APPS[0], "0")


def _incident_signins(w: _Writer) -> None:
    """Sentinel incidents name accounts and addresses: give each account a sign-in from each address (unless one is
    already there), and failures where the incident is about failed sign-ins."""
    for incident in w.tenant.incidents:
        props = incident.get("properties") or {}
        entities = [e for e in incident.get("entities") or [] if isinstance(e, dict)]
        people: list[Person] = []
        addresses: list[tuple[str, Place]] = []
        for entity in entities:
            kind = str(entity.get("kind", "")).lower()
            entity_props = entity.get("properties") or {}
            if kind == "account":
                person = w.tenant.person_by_id(str(entity_props.get("aadUserId") or "")) or w.tenant.person(
                    str(entity_props.get("accountName") or "").lower()
                )
                if person is not None:
                    people.append(person)
            elif kind == "ip" and entity_props.get("address"):
                address = str(entity_props["address"])
                location = entity_props.get("location")
                addresses.append(
                    (address, _place_from(location) if location else w.places.get(address, _place_from({})))
                )
        first = parse_moment(props.get("firstActivityTimeUtc"), w.now) or w.ago(1.0)
        last = parse_moment(props.get("lastActivityTimeUtc"), w.now) or first
        alerts = [a.get("properties") or {} for a in incident.get("alerts") or [] if isinstance(a, dict)]
        names = " ".join([str(props.get("title", ""))] + [str(a.get("alertDisplayName", "")) for a in alerts])
        for person in people:
            if "failed sign-in" in names.lower():
                for attempt in range(6):
                    _signin(
                        w, first + timedelta(minutes=2 * attempt), person, OFFICE_IPS[0], AMSTERDAM, APPS[0], "50126"
                    )
            for ip, place in addresses:
                if (person.object_id.lower(), ip) not in w.signed_in and last <= w.now:
                    _signin(
                        w,
                        last,
                        person,
                        ip,
                        place,
                        APPS[2],
                        "0",
                        risk="high",
                        risk_state="atRisk",
                        risk_events=("unfamiliarFeatures",),
                        conditional_access="notApplied",
                        requirement="singleFactorAuthentication",
                    )


def _victim_breakthrough(w: _Writer, victim: Person) -> tuple[str, Place, datetime, bool]:
    """Where and when the sprayed password finally worked: the victim's anonymizedIPAddress detection when the tenant
    has one (its sign-in row is written by _detection_signins), else a fixed anonymizing address two hours ago."""
    for detection in w.tenant.detections:
        same_user = str(detection.get("userId", "")).lower() == victim.object_id.lower()
        if same_user and detection.get("riskEventType") == "anonymizedIPAddress" and detection.get("ipAddress"):
            when = parse_moment(detection.get("activityDateTime"), w.now)
            if when is not None and when <= w.now:
                return str(detection["ipAddress"]), _place_from(detection.get("location")), when, True
    return ANONYMIZER[0], ANONYMIZER[1], w.ago(2.2), False


def _spray_story(w: _Writer) -> None:
    victim = w.tenant.victim
    office_home = APPS[2]
    scripted = {"operatingSystem": "Linux", "browser": "Python Requests 2.31"}
    # Many failures over the last day from several countries, the bulk from the two known-bad addresses...
    attempts = [(ip, place) for ip, place, count in SPRAY_SOURCES for _ in range(count)]
    w.rng.shuffle(attempts)
    for n, (ip, place) in enumerate(attempts):
        hours = 20.0 - n * (17.0 / len(attempts)) + w.rng.uniform(-0.2, 0.2)
        _signin(
            w,
            w.ago(hours),
            victim,
            ip,
            place,
            office_home,
            "50126",
            device=scripted if place is MOSCOW else None,
            risk="medium",
            risk_state="atRisk",
            risk_events=("passwordSpray",),
        )
    # ...then the password works from an anonymizing address, and the mailbox is read right after.
    ip, place, success_at, from_detection = _victim_breakthrough(w, victim)
    anonymous = {"operatingSystem": "Linux", "browser": "Firefox 115.0"}
    risky: dict[str, Any] = {
        "device": anonymous,
        "risk": "high",
        "risk_state": "atRisk",
        "conditional_access": "notApplied",
        "requirement": "singleFactorAuthentication",
    }
    if not from_detection:
        _signin(w, success_at, victim, ip, place, office_home, "0", risk_events=("anonymizedIPAddress",), **risky)
    for minutes in (8, 15, 31):
        if success_at + timedelta(minutes=minutes) < w.now:
            _signin(
                w,
                success_at + timedelta(minutes=minutes),
                victim,
                ip,
                place,
                APPS[0],
                "0",
                risk_events=("anonymizedIPAddress",),
                interactive=False,
                **risky,
            )
    w.breakthrough = (ip, success_at)
    # The same address tries two more accounts (a spray, not a targeted guess).
    others = [p for p in w.tenant.people if p != victim and not p.privileged][:2]
    for person in others:
        for attempt in range(w.rng.randint(3, 5)):
            _signin(
                w,
                w.ago(6.0 - attempt * 0.15 + w.rng.uniform(0, 0.1)),
                person,
                SPRAY_IP,
                MOSCOW,
                office_home,
                "50126",
                device=scripted,
            )


# --- machines: Heartbeat, SecurityEvent, CommonSecurityLog ----------------------------------------------------------


def _heartbeats(w: _Writer, recent_minutes: int) -> None:
    """Every `recent_minutes` over the last day, hourly before that: enough to tell an agent that stopped reporting."""
    recent_minutes = max(1, recent_minutes)
    for machine in w.tenant.machines:
        windows = machine.os_type.lower() == "windows"
        moments = [w.now - timedelta(minutes=m) for m in range(1, 24 * 60, recent_minutes)]
        moments += [w.now - timedelta(hours=h) for h in range(24, w.days * 24)]
        for moment in moments:
            w.add(
                "Heartbeat",
                {
                    "SourceSystem": "OpsManager" if windows else "Linux",
                    "TimeGenerated": moment
                    - timedelta(seconds=w.rng.randrange(60), microseconds=w.rng.randrange(10**6)),
                    "ComputerIP": machine.public_ip or machine.private_ips[0],
                    "Computer": machine.name,
                    "Category": "Azure Monitor Agent",
                    "OSType": machine.os_type,
                    "OSName": machine.os_name or ("Windows Server 2022 Datacenter" if windows else "Ubuntu"),
                    "OSMajorVersion": (machine.os_version or ("10.0" if windows else "22.04")).split(".")[0],
                    "OSMinorVersion": (machine.os_version or ("10.0" if windows else "22.04")).split(".")[-1],
                    "Version": "1.26.0.0" if windows else "1.29.4",
                    "SCAgentChannel": "Direct",
                    "IsGatewayInstalled": False,
                    "RemoteIPLongitude": AMSTERDAM.longitude,
                    "RemoteIPLatitude": AMSTERDAM.latitude,
                    "RemoteIPCountry": AMSTERDAM.country_name,
                    "SubscriptionId": machine.subscription_id,
                    "ResourceGroup": machine.resource_group,
                    "ResourceProvider": "Microsoft.Compute",
                    "Resource": machine.name,
                    "ResourceId": machine.resource_id,
                    "ResourceType": "virtualMachines",
                    "ComputerEnvironment": "Azure",
                    "Solutions": '"security", "changeTracking"',
                    "VMUUID": machine.vm_id,
                    "ComputerPrivateIPs": list(machine.private_ips),
                    "_ResourceId": machine.resource_id.lower(),
                    "_SubscriptionId": machine.subscription_id,
                },
            )


def _windows_event(w: _Writer, machine: Machine, when: datetime, event_id: int, values: Row) -> None:
    activities = {
        4624: "4624 - An account was successfully logged on.",
        4625: "4625 - An account failed to log on.",
        4634: "4634 - An account was logged off.",
        4672: "4672 - Special privileges assigned to new logon.",
    }
    tasks = {4624: 12544, 4625: 12544, 4634: 12545, 4672: 12548}
    w.add(
        "SecurityEvent",
        {
            "TimeGenerated": when,
            "SourceSystem": "OpsManager",
            "Computer": machine.name,
            "EventSourceName": "Microsoft-Windows-Security-Auditing",
            "Channel": "Security",
            "Task": tasks[event_id],
            "Level": "16" if event_id == 4625 else "8",
            "EventID": event_id,
            "Activity": activities[event_id],
            "_ResourceId": machine.resource_id.lower(),
            "_SubscriptionId": machine.subscription_id,
            **values,
        },
    )


_LOGON_TYPES = {2: "2 - Interactive", 3: "3 - Network", 5: "5 - Service", 10: "10 - RemoteInteractive"}


def _logon(w: _Writer, machine: Machine, when: datetime, user: str, domain: str, logon_type: int, ip: str) -> None:
    logon_id = hex(w.rng.getrandbits(32))
    account = f"{domain}\\{user}"
    sid = (
        f"S-1-5-21-{w.rng.getrandbits(31)}-{w.rng.getrandbits(31)}-{w.rng.getrandbits(31)}-{w.rng.randint(1000, 2000)}"
    )
    common = {
        "Account": account,
        "AccountType": "User",
        "TargetAccount": account,
        "TargetDomainName": domain,
        "TargetUserName": user,
        "TargetUserSid": sid,
        "TargetLogonId": logon_id,
    }
    _windows_event(
        w,
        machine,
        when,
        4624,
        {
            **common,
            "AuthenticationPackageName": "Negotiate",
            "IpAddress": ip,
            "IpPort": str(w.rng.randint(49152, 65535)),
            "LogonProcessName": "User32" if logon_type in (2, 10) else "NtLmSsp",
            "LogonType": logon_type,
            "LogonTypeName": _LOGON_TYPES[logon_type],
            "Process": "svchost.exe",
            "ProcessName": "C:\\Windows\\System32\\svchost.exe",
            "WorkstationName": machine.name.upper(),
            "SubjectUserSid": "S-1-5-18",
            "SubjectUserName": f"{machine.name.upper()}$",
            "SubjectDomainName": "WORKGROUP",
            "SubjectLogonId": "0x3e7",
            "SubjectAccount": "WORKGROUP\\" + machine.name.upper() + "$",
        },
    )
    if user.lower() in ("administrator", "lee.gu", "azureadmin"):
        _windows_event(
            w,
            machine,
            when,
            4672,
            {
                **common,
                "SubjectUserName": user,
                "SubjectDomainName": domain,
                "SubjectLogonId": logon_id,
                "SubjectAccount": account,
            },
        )
    _windows_event(
        w,
        machine,
        when + timedelta(minutes=w.rng.randint(5, 90)),
        4634,
        {**common, "LogonType": logon_type, "LogonTypeName": _LOGON_TYPES[logon_type]},
    )


def _failed_logon(w: _Writer, machine: Machine, when: datetime, user: str, ip: str) -> None:
    bad_user = user.lower() not in ("administrator", "azureadmin")
    _windows_event(
        w,
        machine,
        when,
        4625,
        {
            "Account": f"\\{user}",
            "AccountType": "User",
            "TargetAccount": f"\\{user}",
            "TargetDomainName": "",
            "TargetUserName": user,
            "TargetUserSid": "S-1-0-0",
            "AuthenticationPackageName": "NTLM",
            "FailureReason": "%%2313",
            "IpAddress": ip,
            "IpPort": "0",
            "LogonProcessName": "NtLmSsp ",
            "LogonType": 3,
            "LogonTypeName": _LOGON_TYPES[3],
            "Process": "-",
            "ProcessName": "-",
            "Status": "0xc000006d",
            "SubStatus": "0xc0000064" if bad_user else "0xc000006a",
            "SubjectUserSid": "S-1-0-0",
            "SubjectLogonId": "0x0",
            "SubjectAccount": "-",
            "WorkstationName": "-",
        },
    )


def _security_events(w: _Writer) -> None:
    windows = [m for m in w.tenant.machines if m.os_type.lower() == "windows"]
    admin = next((p for p in w.tenant.people if p.privileged and not p.account.startswith("breakglass")), None)
    for machine in windows:
        for when in w.business_moments((2, 5)):
            _logon(w, machine, when, "svc-backup", machine.name.upper(), 5, "-")
        if admin is not None:
            for when in w.business_moments((0, 2)):
                _logon(w, machine, when, admin.account, "CONTOSO", 10, OFFICE_IPS[0])
    target = _web_machine(w.tenant)
    if target is None:
        return
    # Logon brute force against the internet-facing web server, from the same addresses as the sign-in spray. The
    # demo facts want it as SecurityEvent 4625 whatever the OS; a Linux server also tells it in sshd's own words.
    names = ("ADMINISTRATOR", "administrator", "admin", "Admin", "user", "test", "azureadmin", "backup", "scanner")
    for n in range(48):
        ip = SPRAY_IP if n % 4 else SECOND_SPRAY_IP
        when = w.ago(22.0 - n * 0.4 + w.rng.uniform(0, 0.3))
        user = w.rng.choice(names)
        _failed_logon(w, target, when, user, ip)
        if not target.windows:
            _sshd_failure(w, target, when, user.lower(), ip)


def _sshd_failure(w: _Writer, machine: Machine, when: datetime, user: str, ip: str) -> None:
    port = w.rng.randint(30000, 65000)
    invalid = "" if user == "azureuser" else "invalid user "
    w.add(
        "Syslog",
        {
            "SourceSystem": "Linux",
            "TimeGenerated": when,
            "Computer": machine.name,
            "EventTime": when,
            "Facility": "auth",
            "HostName": machine.name,
            "SeverityLevel": "info",
            "SyslogMessage": f"Failed password for {invalid}{user} from {ip} port {port} ssh2",
            "ProcessID": w.rng.randint(1000, 60000),
            "HostIP": machine.private_ips[0],
            "ProcessName": "sshd",
            "CollectorHostName": machine.name,
            "_ResourceId": machine.resource_id.lower(),
            "_SubscriptionId": machine.subscription_id,
        },
    )


def _web_machine(tenant: Tenant) -> Machine | None:
    return next((m for m in tenant.machines if "web" in m.name), tenant.machines[0] if tenant.machines else None)


def _firewall_row(
    w: _Writer,
    when: datetime,
    source: str,
    destination: str,
    port: int,
    action: str,
    host: str = "",
    malicious: bool = False,
) -> None:
    protocols = {22: "ssh", 443: "ssl", 3389: "ms-rdp", 445: "ms-ds-smb", 80: "web-browsing"}
    w.add(
        "CommonSecurityLog",
        {
            "TimeGenerated": when,
            "DeviceVendor": "Palo Alto Networks",
            "DeviceProduct": "PAN-OS",
            "DeviceVersion": "11.1.2",
            "DeviceEventClassID": "end" if action == "allow" else "deny",
            "Activity": "TRAFFIC",
            "LogSeverity": "1" if action == "allow" else "3",
            "OriginalLogSeverity": "Informational" if action == "allow" else "Low",
            "AdditionalExtensions": f"PanOSRuleName={'allow-web' if action == 'allow' else 'deny-inbound-mgmt'}",
            "DeviceAction": action,
            "SimplifiedDeviceAction": "Allow" if action == "allow" else "Deny",
            "ApplicationProtocol": protocols.get(port, "unknown-tcp"),
            "EventCount": 1,
            "DestinationHostName": host,
            "DestinationIP": destination,
            "DestinationPort": port,
            "DeviceInboundInterface": "ethernet1/1",
            "DeviceOutboundInterface": "ethernet1/2",
            "Protocol": "TCP",
            "SourceIP": source,
            "SourcePort": w.rng.randint(1024, 65535),
            "SentBytes": w.rng.randint(60, 400) if action != "allow" else w.rng.randint(800, 90_000),
            "ReceivedBytes": 0 if action != "allow" else w.rng.randint(2_000, 900_000),
            "CommunicationDirection": "0",
            "Computer": "fw-perimeter-01",
            "DeviceName": "fw-perimeter-01",
            "DeviceAddress": "10.0.0.4",
            "RemoteIP": source,
            "RemotePort": "",
            "MaliciousIP": source if malicious else "",
            "MaliciousIPCountry": MOSCOW.country_name if malicious else "",
            "ThreatSeverity": 3 if malicious else None,
            "IndicatorThreatType": "Botnet" if malicious else "",
            "ThreatDescription": "Address seen in password spray and RDP brute force campaigns" if malicious else "",
            "SourceSystem": "OpsManager",
            "_ResourceId": "",
        },
    )


def _firewall(w: _Writer) -> None:
    web = _web_machine(w.tenant)
    if web is None:
        return
    web_ip = web.public_ip or web.private_ips[0]
    for when in w.business_moments((40, 70)):  # ordinary visitors of the web site
        client = f"198.51.100.{w.rng.randint(150, 199)}" if w.rng.random() < 0.5 else f"192.0.2.{w.rng.randint(20, 90)}"
        _firewall_row(w, when, client, web_ip, 443, "allow", web.name)
    for n in range(30):  # the known-bad address knocking on management ports, denied at the perimeter
        port = (3389, 22, 445, 3389)[n % 4]
        when = w.ago(23.0 - n * 0.76 + w.rng.uniform(0, 0.2))
        _firewall_row(w, when, SPRAY_IP, web_ip, port, "deny", web.name, malicious=True)
    for n in range(5):  # and browsing the storefront in the last hour, which the firewall lets through
        _firewall_row(w, w.ago(0.9 - n * 0.15), SPRAY_IP, web_ip, 443, "allow", web.name, malicious=True)


# --- AuditLogs and AzureActivity ------------------------------------------------------------------------------------


def _audit_row(
    w: _Writer,
    when: datetime,
    activity: str,
    category: str,
    actor: Person,
    ip: str,
    target: Person,
    service: str,
    operation: str,
    properties: list[dict[str, Any]],
) -> None:
    w.add(
        "AuditLogs",
        {
            "SourceSystem": "Azure AD",
            "TimeGenerated": when,
            "ResourceId": f"/tenants/{w.tenant.tenant_id}/providers/Microsoft.aadiam",
            "OperationName": activity,
            "OperationVersion": "1.0",
            "Category": category,
            "ResultType": "",
            "ResultSignature": "None",
            "ResultDescription": "",
            "DurationMs": 0,
            "CorrelationId": w.guid(),
            "Resource": "Microsoft.aadiam",
            "ResourceGroup": "Microsoft.aadiam",
            "ResourceProvider": "Microsoft.aadiam",
            "Identity": actor.display_name,
            "Level": "4",
            "Location": "EU",
            "AdditionalDetails": [{"key": "UserAgent", "value": USER_AGENTS["Windows10"]}],
            "Id": f"Directory_{w.guid()}",
            "InitiatedBy": {
                "user": {
                    "id": actor.object_id,
                    "displayName": None,
                    "userPrincipalName": actor.upn,
                    "ipAddress": ip,
                    "roles": [],
                }
            },
            "LoggedByService": service,
            "Result": "success",
            "ResultReason": "",
            "TargetResources": [
                {
                    "id": target.object_id,
                    "displayName": None,
                    "type": "User",
                    "userPrincipalName": target.upn,
                    "modifiedProperties": properties,
                    "administrativeUnits": [],
                }
            ],
            "AADTenantId": w.tenant.tenant_id,
            "ActivityDisplayName": activity,
            "ActivityDateTime": when,
            "AADOperationType": operation,
        },
    )


def _audit(w: _Writer) -> None:
    admin = next((p for p in w.tenant.people if p.privileged and not p.account.startswith("breakglass")), None)
    if admin is not None:
        changes = (
            ("Update user", "UserManagement", "Core Directory", "Update", "Department"),
            ("Reset user password", "UserManagement", "Core Directory", "Update", "PasswordProfile"),
            ("Add member to group", "GroupManagement", "Core Directory", "Assign", "Group.DisplayName"),
        )
        for when in w.business_moments((1, 4)):
            activity, category, service, operation, prop = w.rng.choice(changes)
            target = w.rng.choice(w.tenant.people)
            _audit_row(
                w,
                when,
                activity,
                category,
                admin,
                OFFICE_IPS[0],
                target,
                service,
                operation,
                [{"displayName": prop, "oldValue": None, "newValue": None}],
            )
    victim = w.tenant.victim
    ip, success_at = w.breakthrough
    # After the risky sign-in the attacker registers their own authenticator: persistence.
    _audit_row(
        w,
        min(success_at + timedelta(minutes=12), w.now),
        "User registered security info",
        "UserManagement",
        victim,
        ip,
        victim,
        "Authentication Methods",
        "Add",
        [
            {
                "displayName": "StrongAuthenticationMethod",
                "oldValue": "[]",
                "newValue": '[{"MethodType":6,"Default":true}]',
            }
        ],
    )


def _activity(w: _Writer) -> None:
    admin = next((p for p in w.tenant.people if p.privileged and not p.account.startswith("breakglass")), None)
    if admin is None or not w.tenant.machines:
        return
    operations = (
        ("Microsoft.Compute/virtualMachines/start/action", "Start Virtual Machine"),
        ("Microsoft.Compute/virtualMachines/write", "Create or Update Virtual Machine"),
        ("Microsoft.Network/networkSecurityGroups/securityRules/write", "Create or Update Security Rule"),
    )
    for when in w.business_moments((0, 3)):
        operation, name = w.rng.choice(operations)
        machine = w.rng.choice(w.tenant.machines)
        resource = machine.resource_id
        if "securityRules" in operation:
            resource = resource.split("/providers/")[0] + "/providers/Microsoft.Network/networkSecurityGroups/nsg-web"
            resource += "/securityRules/allow-https"
        _activity_pair(w, when, admin.upn, OFFICE_IPS[0], operation, name, resource, "Succeeded", "OK")
    storage = f"/subscriptions/{w.tenant.subscription_id}/resourceGroups/rg-soc/providers/Microsoft.Storage"
    storage += "/storageAccounts/stcontosocaptures"
    ip, success_at = w.breakthrough
    # With the stolen password the attacker probes Azure: storage keys, then a run command on the web server from
    # the known-bad address (what a "TI map IP entity to AzureActivity" rule matches). Both are denied.
    _activity_pair(
        w,
        min(success_at + timedelta(minutes=25), w.now),
        w.tenant.victim.upn,
        ip,
        "Microsoft.Storage/storageAccounts/listKeys/action",
        "List Storage Account Keys",
        storage,
        "Failed",
        "Forbidden",
    )
    web = _web_machine(w.tenant)
    if web is not None:
        _activity_pair(
            w,
            w.ago(0.75),
            w.tenant.victim.upn,
            SPRAY_IP,
            "Microsoft.Compute/virtualMachines/runCommand/action",
            "Run Command on Virtual Machine",
            web.resource_id,
            "Failed",
            "Forbidden",
        )


def _activity_pair(
    w: _Writer,
    when: datetime,
    caller: str,
    ip: str,
    operation: str,
    name: str,
    resource: str,
    outcome: str,
    substatus: str,
) -> None:
    """ARM writes show up twice in the activity log: Started, then the outcome, under one correlation id."""
    correlation = w.guid()
    group = _id_part(resource, "resourceGroups")
    provider = operation.split("/")[0]
    for status, sub, at in (
        ("Started", "", when),
        (outcome, substatus, when + timedelta(seconds=w.rng.randint(2, 40))),
    ):
        authorization = {"action": operation, "scope": resource}
        w.add(
            "AzureActivity",
            {
                "SourceSystem": "Azure",
                "CallerIpAddress": ip,
                "CategoryValue": "Administrative",
                "CorrelationId": correlation,
                "Authorization": json.dumps(authorization),
                "Authorization_d": authorization,
                "Level": "Error" if status == "Failed" else "Informational",
                "OperationNameValue": operation.upper(),
                "Properties": json.dumps({"statusCode": sub or "Started"}),
                "Properties_d": {"statusCode": sub or "Started", "entity": resource},
                "Caller": caller,
                "EventDataId": w.guid(),
                "EventSubmissionTimestamp": at + timedelta(seconds=3),
                "HTTPRequest": json.dumps({"clientRequestId": w.guid(), "clientIpAddress": ip, "method": "POST"}),
                "OperationId": w.guid(),
                "ResourceGroup": group.upper(),
                "ResourceProviderValue": provider.upper(),
                "ActivityStatusValue": "Failure"
                if status == "Failed"
                else ("Start" if status == "Started" else "Success"),
                "ActivitySubstatusValue": sub,
                "Hierarchy": f"{w.tenant.tenant_id}/{w.tenant.subscription_id}",
                "TimeGenerated": at,
                "SubscriptionId": w.tenant.subscription_id,
                "OperationName": name,
                "ActivityStatus": status,
                "ActivitySubstatus": sub,
                "Category": "Administrative",
                "ResourceId": resource,
                "ResourceProvider": provider,
                "Resource": resource.rsplit("/", 1)[-1],
                "_ResourceId": resource.lower(),
                "_SubscriptionId": w.tenant.subscription_id,
            },
        )


# --- SecurityAlert and SecurityIncident -----------------------------------------------------------------------------

# ARM entity kind -> the legacy lowercase `Type` of SecurityAlert.Entities
_LEGACY_TYPES = {
    "account": "account",
    "host": "host",
    "ip": "ip",
    "url": "url",
    "filehash": "filehash",
    "file": "file",
    "azureresource": "azure-resource",
    "process": "process",
    "dnsresolution": "dns",
    "mailbox": "mailbox",
    "cloudapplication": "cloud-application",
    "securitygroup": "security-group",
    "mailmessage": "mail-message",
    "registrykey": "registry-key",
    "registryvalue": "registry-value",
    "malware": "malware",
    "iotdevice": "iotdevice",
    "mailcluster": "mail-cluster",
    "submissionmail": "SubmissionMail",
    "networkconnection": "network-connection",
}
# camelCase ARM property -> PascalCase legacy property, where simply capitalising gets it wrong
_LEGACY_PROPERTIES = {
    "accountName": "Name",
    "upnSuffix": "UPNSuffix",
    "ntDomain": "NTDomain",
    "azureID": "AzureID",
    "omsAgentID": "OMSAgentID",
    "osFamily": "OSFamily",
    "osVersion": "OSVersion",
    "dnsDomain": "DnsDomain",
    "hostName": "HostName",
    "netBiosName": "NetBiosName",
    "aadUserId": "AadUserId",
    "aadTenantId": "AadTenantId",
}
_DERIVED_PROPERTIES = {"friendlyName", "additionalData"}


def legacy_entities(entities: Iterable[dict[str, Any]]) -> str:
    """ARM entities (kind + camelCase properties) in the SecurityAlert.Entities dialect: a JSON string of
    {"$id", "Type" (lowercase), PascalCase properties}."""
    out: list[dict[str, Any]] = []
    for number, entity in enumerate(entities, start=2):
        kind = str(entity.get("kind") or entity.get("Type") or entity.get("type") or "").lower()
        nested = entity.get("properties")
        properties: dict[str, Any] = nested if isinstance(nested, dict) else entity
        legacy: dict[str, Any] = {"$id": str(number)}
        for key, value in properties.items():
            if key in _DERIVED_PROPERTIES or key in ("kind", "Type", "type", "$id") or value is None:
                continue
            legacy[_LEGACY_PROPERTIES.get(key, key[:1].upper() + key[1:])] = value
        legacy["Type"] = _LEGACY_TYPES.get(kind, kind)
        out.append(legacy)
    return json.dumps(out, separators=(",", ":"))


def _moment(value: Any, fallback: datetime, now: datetime) -> datetime:
    parsed = parse_moment(value, now) if value is not None else None
    return parsed or fallback


def _alerts_and_incidents(w: _Writer) -> None:
    tenant = w.tenant
    incidents = list(tenant.incidents) or _demo_incidents(w)
    for position, incident in enumerate(incidents):
        props = incident.get("properties") or {}
        name = str(incident.get("name") or str(incident.get("id", "")).rsplit("/", 1)[-1] or w.guid())
        created = _moment(props.get("createdTimeUtc"), w.ago(1.5 + position), w.now)
        first = _moment(props.get("firstActivityTimeUtc"), created - timedelta(hours=1), w.now)
        last = _moment(props.get("lastActivityTimeUtc"), created, w.now)
        modified = _moment(props.get("lastModifiedTimeUtc"), created, w.now)
        entities = [e for e in incident.get("entities") or [] if isinstance(e, dict)]
        alert_ids: list[str] = []
        product_names: list[str] = []
        for alert in incident.get("alerts") or []:
            if not isinstance(alert, dict):
                continue
            nested = alert.get("properties")
            alert_props: dict[str, Any] = nested if isinstance(nested, dict) else alert
            system_id = str(alert_props.get("systemAlertId") or alert.get("name") or w.guid())
            alert_ids.append(system_id)
            product = str(alert_props.get("productName") or "Azure Sentinel")
            product_names.append(product)
            generated = _moment(alert_props.get("timeGenerated"), created - timedelta(minutes=5), w.now)
            tactics = alert_props.get("tactics") or []
            techniques = alert_props.get("techniques") or []
            alert_entities = [e for e in alert.get("entities") or entities if isinstance(e, dict)]
            w.add(
                "SecurityAlert",
                {
                    "TimeGenerated": generated,
                    "DisplayName": alert_props.get("alertDisplayName") or props.get("title"),
                    "AlertName": alert_props.get("alertDisplayName") or props.get("title"),
                    "AlertSeverity": alert_props.get("severity") or props.get("severity") or "Medium",
                    "Description": alert_props.get("description") or props.get("description") or "",
                    "ProviderName": alert_props.get("providerName") or "ASI Scheduled Alerts",
                    "VendorName": alert_props.get("vendorName") or "Microsoft",
                    "VendorOriginalId": alert_props.get("providerAlertId") or system_id,
                    "SystemAlertId": system_id,
                    "ResourceId": "",
                    "SourceComputerId": "",
                    "AlertType": alert_props.get("alertType") or "",
                    "ConfidenceLevel": alert_props.get("confidenceLevel") or "Unknown",
                    "ConfidenceScore": alert_props.get("confidenceScore"),
                    "IsIncident": False,
                    "StartTime": _moment(alert_props.get("startTimeUtc"), first, w.now),
                    "EndTime": _moment(alert_props.get("endTimeUtc"), last, w.now),
                    "ProcessingEndTime": _moment(alert_props.get("processingEndTime"), generated, w.now),
                    "RemediationSteps": json.dumps(alert_props.get("remediationSteps") or []),
                    "ExtendedProperties": json.dumps(alert_props.get("additionalData") or {}),
                    "Entities": legacy_entities(alert_entities),
                    "SourceSystem": "Detection",
                    "WorkspaceSubscriptionId": tenant.subscription_id,
                    "WorkspaceResourceGroup": tenant.workspace_group,
                    "ExtendedLinks": "",
                    "ProductName": product,
                    "ProductComponentName": alert_props.get("productComponentName") or "Scheduled Alerts",
                    "AlertLink": alert_props.get("alertLink") or "",
                    "Status": alert_props.get("status") or "New",
                    "CompromisedEntity": alert_props.get("compromisedEntity") or "",
                    "Tactics": ", ".join(str(t) for t in tactics),
                    "Techniques": json.dumps(techniques),
                    "SubTechniques": json.dumps(alert_props.get("subTechniques") or []),
                },
            )
        owner = props.get("owner") or {}
        w.add(
            "SecurityIncident",
            {
                "TimeGenerated": modified,
                "IncidentName": name,
                "Title": props.get("title") or "",
                "Description": props.get("description") or "",
                "Severity": props.get("severity") or "Medium",
                "Status": props.get("status") or "New",
                "Classification": props.get("classification") or "",
                "ClassificationComment": props.get("classificationComment") or "",
                "ClassificationReason": props.get("classificationReason") or "",
                "Owner": {key: owner.get(key) for key in ("objectId", "email", "assignedTo", "userPrincipalName")},
                "ProviderName": props.get("providerName") or "Azure Sentinel",
                "ProviderIncidentId": str(props.get("providerIncidentId") or props.get("incidentNumber") or ""),
                "FirstActivityTime": first,
                "LastActivityTime": last,
                "FirstModifiedTime": created,
                "LastModifiedTime": modified,
                "CreatedTime": created,
                "ClosedTime": modified if props.get("status") == "Closed" else None,
                "IncidentNumber": int(props.get("incidentNumber") or position + 1),
                "RelatedAnalyticRuleIds": list(props.get("relatedAnalyticRuleIds") or []),
                "AlertIds": alert_ids,
                "BookmarkIds": [],
                "Comments": [],
                "Tasks": [],
                "Labels": list(props.get("labels") or []),
                "IncidentUrl": props.get("incidentUrl") or "",
                "AdditionalData": {
                    "alertsCount": len(alert_ids),
                    "bookmarksCount": 0,
                    "commentsCount": len(incident.get("comments") or []),
                    "alertProductNames": sorted(set(product_names)),
                    "tactics": list(_section(props, "additionalData", "tactics") or []),
                },
                "ModifiedBy": "Incident created from alert rule",
                "SourceSystem": "Azure",
            },
        )


def _demo_incidents(w: _Writer) -> list[dict[str, Any]]:
    """Stand-ins for sentinel.incidents when that section is absent: the two stories as incidents."""
    tenant = w.tenant
    victim = tenant.victim
    account = {
        "kind": "Account",
        "properties": {"accountName": victim.account, "upnSuffix": tenant.domain, "aadUserId": victim.object_id},
    }
    spray_ip = {"kind": "Ip", "properties": {"address": SPRAY_IP}}
    anonymizer = {"kind": "Ip", "properties": {"address": w.breakthrough[0]}}
    web = _web_machine(tenant)
    host_name = web.name if web else "vm-web-01"
    host = {
        "kind": "Host",
        "properties": {
            "hostName": web.name if web else "vm-web-01",
            "azureID": web.resource_id if web else "",
            "osFamily": "Windows",
        },
    }
    return [
        {
            "name": w.guid(),
            "properties": {
                "title": f"Password spray followed by risky sign-in for {victim.display_name}",
                "severity": "High",
                "status": "New",
                "incidentNumber": 1,
            },
            "entities": [account, spray_ip, anonymizer],
            "alerts": [
                {
                    "properties": {
                        "alertDisplayName": "Password spray attempt",
                        "severity": "Medium",
                        "tactics": ["CredentialAccess"],
                        "techniques": ["T1110"],
                    }
                },
                {
                    "properties": {
                        "alertDisplayName": "Anonymous IP address",
                        "severity": "High",
                        "productName": "Azure Active Directory Identity Protection",
                        "tactics": ["InitialAccess"],
                        "techniques": ["T1078"],
                    }
                },
            ],
        },
        {
            "name": w.guid(),
            "properties": {
                "title": f"RDP brute force against {host_name}",
                "severity": "Medium",
                "status": "New",
                "incidentNumber": 2,
            },
            "entities": [host, spray_ip],
            "alerts": [
                {
                    "properties": {
                        "alertDisplayName": "Multiple failed RDP logons from one address",
                        "severity": "Medium",
                        "tactics": ["CredentialAccess"],
                        "techniques": ["T1110"],
                    }
                }
            ],
        },
    ]


# --- ThreatIntelligenceIndicator and Usage --------------------------------------------------------------------------


def _threat_intel(w: _Writer) -> None:
    for ip, place, _ in SPRAY_SOURCES[:2]:
        w.add(
            "ThreatIntelligenceIndicator",
            {
                "TimeGenerated": w.ago(30.0),
                "SourceSystem": "Microsoft Defender Threat Intelligence",
                "Action": "alert",
                "AzureTenantId": w.tenant.tenant_id,
                "ConfidenceScore": 80.0,
                "Description": f"Password spray infrastructure ({place.country_name})",
                "ExpirationDateTime": w.now + timedelta(days=30),
                "ExternalIndicatorId": f"indicator--{w.guid()}",
                "IndicatorId": w.guid(),
                "ThreatType": "Botnet",
                "Active": True,
                "NetworkIP": ip,
                "NetworkSourceIP": ip,
                "DomainName": "",
                "Url": "",
                "TrafficLightProtocolLevel": "Green",
                "Tags": '["password-spray"]',
            },
        )


def _usage(w: _Writer) -> None:
    """One row per table and day, measuring what the other generators wrote (the published example's table)."""
    solutions = {"SecurityEvent": "Security", "CommonSecurityLog": "SecurityInsights", "Heartbeat": "LogManagement"}
    for table, rows in w.rows.items():
        if table == "Usage" or not rows:
            continue
        per_day: dict[date, int] = {}
        for row in rows:
            moment = row["TimeGenerated"]
            per_day[moment.date()] = per_day.get(moment.date(), 0) + 1
        for day, count in sorted(per_day.items()):
            start = datetime.combine(day, datetime.min.time(), UTC)
            end = min(start + timedelta(hours=23, minutes=59, seconds=59), w.now)
            w.add(
                "Usage",
                {
                    "Computer": "",
                    "TimeGenerated": end,
                    "SourceSystem": "OMS",
                    "StartTime": start,
                    "EndTime": end,
                    "ResourceUri": w.tenant.workspace_resource_id.lower(),
                    "LinkedResourceUri": None,
                    "DataType": table,
                    "Solution": solutions.get(table, "SecurityInsights"),
                    "BatchesWithinSla": count,
                    "BatchesOutsideSla": 0,
                    "BatchesCapped": 0,
                    "TotalBatches": count,
                    "AvgLatencyInSeconds": round(w.rng.uniform(0.8, 4.0), 3),
                    "Quantity": round(count * 0.0019, 6),
                    "QuantityUnit": "MBytes",
                    "IsBillable": table != "SecurityAlert",
                    "MeterId": "a4e29a95-5b4c-408b-80e3-113f9410566e",
                    "LinkedMeterId": "00000000-0000-0000-0000-000000000000",
                },
            )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
