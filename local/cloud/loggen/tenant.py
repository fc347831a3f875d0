"""What the generator knows of the tenant: its people, machines, workspace, incidents and risk detections, read from
the tenant document, with the fixed demo facts (Contoso's people and machines, the places and addresses of the
stories, the apps and devices people sign in with) standing in for any section the document lacks."""

from __future__ import annotations

import re
from dataclasses import dataclass
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
    def admin(self) -> Person | None:
        """The admin whose everyday work the logs show (emergency access accounts stay unused)."""
        return next((p for p in self.people if p.privileged and not p.account.startswith("breakglass")), None)

    @property
    def victim(self) -> Person:
        return self.person("adele.vance") or next((p for p in self.people if not p.privileged), self.people[0])


def section(doc: dict[str, Any], *path: str) -> Any:
    node: Any = doc
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _resources(doc: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    resources = section(doc, "arm", "resources") or []
    return [r for r in resources if isinstance(r, dict) and str(r.get("type", "")).lower() == resource_type.lower()]


def id_part(resource_id: str, key: str) -> str:
    parts = resource_id.split("/")
    lowered = [p.lower() for p in parts]
    return parts[lowered.index(key.lower()) + 1] if key.lower() in lowered[:-1] else ""


def read_tenant(doc: dict[str, Any]) -> Tenant:
    tenant = section(doc, "tenant") or {}
    people = tuple(
        Person(
            str(u["userPrincipalName"]),
            str(u.get("id", "")),
            str(u.get("displayName") or u["userPrincipalName"]),
            _is_privileged(doc, str(u.get("id", ""))),
            str(u.get("userType") or "Member"),
        )
        for u in (section(doc, "graph", "users") or [])
        if isinstance(u, dict) and u.get("userPrincipalName")
    )
    workspaces = _resources(doc, "Microsoft.OperationalInsights/workspaces")
    workspace = next(
        (w for w in workspaces if str(section(w, "properties", "customerId") or "") == DEMO_WORKSPACE_ID),
        workspaces[0] if workspaces else None,
    )
    workspace_id, workspace_group, workspace_name, subscription = (
        DEMO_WORKSPACE_ID,
        DEMO_WORKSPACE_GROUP,
        DEMO_WORKSPACE_NAME,
        DEMO_SUBSCRIPTION,
    )
    if workspace is not None:
        workspace_id = str(section(workspace, "properties", "customerId") or workspace_id)
        workspace_name = str(workspace.get("name") or workspace_name)
        workspace_group = id_part(str(workspace.get("id", "")), "resourceGroups") or workspace_group
        subscription = id_part(str(workspace.get("id", "")), "subscriptions") or subscription
    subscriptions = section(doc, "arm", "subscriptions") or []
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
        incidents=tuple(i for i in (section(doc, "sentinel", "incidents") or []) if isinstance(i, dict)),
        detections=tuple(d for d in (section(doc, "graph", "riskDetections") or []) if isinstance(d, dict)),
    )


def _is_privileged(doc: dict[str, Any], object_id: str) -> bool:
    roles = section(doc, "graph", "directoryRoles") or []
    return any(isinstance(r, dict) and object_id in (r.get("members") or []) for r in roles)


def _machines(doc: dict[str, Any]) -> tuple[Machine, ...]:
    nics = _resources(doc, "Microsoft.Network/networkInterfaces")
    public_ips = {
        str(p.get("id", "")).lower(): str(section(p, "properties", "ipAddress") or "")
        for p in _resources(doc, "Microsoft.Network/publicIPAddresses")
    }
    machines = []
    for vm in _resources(doc, "Microsoft.Compute/virtualMachines"):
        vm_id = str(vm.get("id", ""))
        private: list[str] = []
        public = ""
        for nic in nics:
            if str(section(nic, "properties", "virtualMachine", "id") or "").lower() != vm_id.lower():
                continue
            for config in section(nic, "properties", "ipConfigurations") or []:
                address = section(config, "properties", "privateIPAddress")
                if address:
                    private.append(str(address))
                public_ref = str(section(config, "properties", "publicIPAddress", "id") or "").lower()
                public = public or public_ips.get(public_ref, "")
        os_type = str(section(vm, "properties", "storageProfile", "osDisk", "osType") or "")
        name = str(vm.get("name") or vm_id.rsplit("/", 1)[-1])
        if not os_type:
            os_type = "Linux" if "dev" in name else "Windows"
        image = section(vm, "properties", "storageProfile", "imageReference") or {}
        os_name, os_version = _os_of(os_type, image if isinstance(image, dict) else {})
        machines.append(
            Machine(
                name=name,
                resource_id=vm_id,
                subscription_id=id_part(vm_id, "subscriptions") or DEMO_SUBSCRIPTION,
                resource_group=id_part(vm_id, "resourceGroups"),
                location=str(vm.get("location") or "westeurope"),
                os_type=os_type,
                private_ips=tuple(private) or ("10.0.0.4",),
                public_ip=public,
                vm_id=str(section(vm, "properties", "vmId") or ""),
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


def place_from(location: Any) -> Place:
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


def web_machine(tenant: Tenant) -> Machine | None:
    return next((m for m in tenant.machines if "web" in m.name), tenant.machines[0] if tenant.machines else None)
