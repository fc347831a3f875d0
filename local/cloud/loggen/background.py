"""Everyday activity, the noise the stories hide in: people signing in from the office and from home, agents'
heartbeats, service and admin logons, visitors of the web site, admins' directory changes and Azure operations,
and the Usage table that measures it all. Each function is called in a fixed place in generate(), so the shared
random generator gives the same rows every time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from local.cloud.loggen.rows import activity_pair, audit_row, firewall_row, logon, signin
from local.cloud.loggen.tenant import (
    AMSTERDAM,
    APPS,
    AZURE_PORTAL,
    DEVICES,
    LONDON,
    OFFICE_IPS,
    UTRECHT,
    web_machine,
)
from local.cloud.loggen.writer import Writer


def signins(w: Writer, per_day: int) -> None:
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
            signin(w, when, person, ip, place, app, result, device=device, interactive=w.rng.random() < 0.7)


def heartbeats(w: Writer, recent_minutes: int) -> None:
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


def windows_logons(w: Writer) -> None:
    """The backup service's logons on every Windows machine, and an admin's remote desktop sessions."""
    windows = [m for m in w.tenant.machines if m.os_type.lower() == "windows"]
    admin = w.tenant.admin
    for machine in windows:
        for when in w.business_moments((2, 5)):
            logon(w, machine, when, "svc-backup", machine.name.upper(), 5, "-")
        if admin is not None:
            for when in w.business_moments((0, 2)):
                logon(w, machine, when, admin.account, "CONTOSO", 10, OFFICE_IPS[0])


def web_visitors(w: Writer) -> None:
    """Ordinary visitors of the web site, let through by the perimeter firewall."""
    web = web_machine(w.tenant)
    if web is None:
        return
    web_ip = web.public_ip or web.private_ips[0]
    for when in w.business_moments((40, 70)):
        client = f"198.51.100.{w.rng.randint(150, 199)}" if w.rng.random() < 0.5 else f"192.0.2.{w.rng.randint(20, 90)}"
        firewall_row(w, when, client, web_ip, 443, "allow", web.name)


def directory_changes(w: Writer) -> None:
    """An admin's everyday changes in the directory."""
    admin = w.tenant.admin
    if admin is not None:
        changes = (
            ("Update user", "UserManagement", "Core Directory", "Update", "Department"),
            ("Reset user password", "UserManagement", "Core Directory", "Update", "PasswordProfile"),
            ("Add member to group", "GroupManagement", "Core Directory", "Assign", "Group.DisplayName"),
        )
        for when in w.business_moments((1, 4)):
            activity, category, service, operation, prop = w.rng.choice(changes)
            target = w.rng.choice(w.tenant.people)
            audit_row(
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


def azure_activity(w: Writer) -> None:
    """An admin's everyday operations on the machines and their network security group."""
    admin = w.tenant.admin
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
        activity_pair(w, when, admin.upn, OFFICE_IPS[0], operation, name, resource, "Succeeded", "OK")


def usage(w: Writer) -> None:
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
