"""The demo's stories, told in the logs as a SOC would find them: adele.vance's password sprayed from several
foreign addresses until it works from an anonymizing one; 203.0.113.66 spraying two more accounts, knocking on the
web server's management ports and failing to log on there; the attacker's persistence and Azure probing; the
sign-ins behind every Graph risk detection and Sentinel incident; the incidents' alerts and the threat intelligence
that names the spray's addresses."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from local.cloud.loggen.explicit import parse_moment
from local.cloud.loggen.rows import (
    activity_pair,
    audit_row,
    device_from,
    failed_logon,
    firewall_row,
    legacy_entities,
    signin,
    sshd_failure,
)
from local.cloud.loggen.tenant import (
    AMSTERDAM,
    ANONYMIZER,
    APPS,
    MOSCOW,
    OFFICE_IPS,
    SECOND_SPRAY_IP,
    SPRAY_IP,
    SPRAY_SOURCES,
    Person,
    Place,
    place_from,
    section,
    web_machine,
)
from local.cloud.loggen.writer import Writer


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


def _victim_breakthrough(w: Writer, victim: Person) -> tuple[str, Place, datetime, bool]:
    """Where and when the sprayed password finally worked: the victim's anonymizedIPAddress detection when the tenant
    has one (its sign-in row is written by _detection_signins), else a fixed anonymizing address two hours ago."""
    for detection in w.tenant.detections:
        same_user = str(detection.get("userId", "")).lower() == victim.object_id.lower()
        if same_user and detection.get("riskEventType") == "anonymizedIPAddress" and detection.get("ipAddress"):
            when = parse_moment(detection.get("activityDateTime"), w.now)
            if when is not None and when <= w.now:
                return str(detection["ipAddress"]), place_from(detection.get("location")), when, True
    return ANONYMIZER[0], ANONYMIZER[1], w.ago(2.2), False


def password_spray(w: Writer) -> None:
    victim = w.tenant.victim
    office_home = APPS[2]
    scripted = {"operatingSystem": "Linux", "browser": "Python Requests 2.31"}
    # Many failures over the last day from several countries, the bulk from the two known-bad addresses...
    attempts = [(ip, place) for ip, place, count in SPRAY_SOURCES for _ in range(count)]
    w.rng.shuffle(attempts)
    for n, (ip, place) in enumerate(attempts):
        hours = 20.0 - n * (17.0 / len(attempts)) + w.rng.uniform(-0.2, 0.2)
        signin(
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
        signin(w, success_at, victim, ip, place, office_home, "0", risk_events=("anonymizedIPAddress",), **risky)
    for minutes in (8, 15, 31):
        if success_at + timedelta(minutes=minutes) < w.now:
            signin(
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
            signin(
                w,
                w.ago(6.0 - attempt * 0.15 + w.rng.uniform(0, 0.1)),
                person,
                SPRAY_IP,
                MOSCOW,
                office_home,
                "50126",
                device=scripted,
            )


def detection_signins(w: Writer) -> None:
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
        signin(
            w,
            when,
            person,
            str(detection["ipAddress"]),
            place_from(detection.get("location")),
            APPS[2],
            "0",
            device=device_from(agent),
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
            signin(w, earlier, person, str(related["clientIP"]), place_from(related), APPS[0], "0")


def incident_signins(w: Writer) -> None:
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
                addresses.append((address, place_from(location) if location else w.places.get(address, place_from({}))))
        first = parse_moment(props.get("firstActivityTimeUtc"), w.now) or w.ago(1.0)
        last = parse_moment(props.get("lastActivityTimeUtc"), w.now) or first
        alerts = [a.get("properties") or {} for a in incident.get("alerts") or [] if isinstance(a, dict)]
        names = " ".join([str(props.get("title", ""))] + [str(a.get("alertDisplayName", "")) for a in alerts])
        for person in people:
            if "failed sign-in" in names.lower():
                for attempt in range(6):
                    signin(
                        w, first + timedelta(minutes=2 * attempt), person, OFFICE_IPS[0], AMSTERDAM, APPS[0], "50126"
                    )
            for ip, place in addresses:
                if (person.object_id.lower(), ip) not in w.signed_in and last <= w.now:
                    signin(
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


def logon_brute_force(w: Writer) -> None:
    """Logon brute force against the internet-facing web server, from the same addresses as the sign-in spray. The
    demo facts want it as SecurityEvent 4625 whatever the OS; a Linux server also tells it in sshd's own words."""
    target = web_machine(w.tenant)
    if target is None:
        return
    names = ("ADMINISTRATOR", "administrator", "admin", "Admin", "user", "test", "azureadmin", "backup", "scanner")
    for n in range(48):
        ip = SPRAY_IP if n % 4 else SECOND_SPRAY_IP
        when = w.ago(22.0 - n * 0.4 + w.rng.uniform(0, 0.3))
        user = w.rng.choice(names)
        failed_logon(w, target, when, user, ip)
        if not target.windows:
            sshd_failure(w, target, when, user.lower(), ip)


def perimeter_probes(w: Writer) -> None:
    """The known-bad address at the perimeter: knocking on management ports (denied), browsing the storefront."""
    web = web_machine(w.tenant)
    if web is None:
        return
    web_ip = web.public_ip or web.private_ips[0]
    for n in range(30):  # the known-bad address knocking on management ports, denied at the perimeter
        port = (3389, 22, 445, 3389)[n % 4]
        when = w.ago(23.0 - n * 0.76 + w.rng.uniform(0, 0.2))
        firewall_row(w, when, SPRAY_IP, web_ip, port, "deny", web.name, malicious=True)
    for n in range(5):  # and browsing the storefront in the last hour, which the firewall lets through
        firewall_row(w, w.ago(0.9 - n * 0.15), SPRAY_IP, web_ip, 443, "allow", web.name, malicious=True)


def persistence(w: Writer) -> None:
    """After the risky sign-in the attacker registers their own authenticator."""
    victim = w.tenant.victim
    ip, success_at = w.breakthrough
    audit_row(
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


def azure_probing(w: Writer) -> None:
    """With the stolen password the attacker probes Azure: storage keys, then a run command on the web server from
    the known-bad address (what a "TI map IP entity to AzureActivity" rule matches). Both are denied. Written only
    where the admins' own Azure activity is (a tenant with an admin and machines), as it always has been."""
    if w.tenant.admin is None or not w.tenant.machines:
        return
    storage = f"/subscriptions/{w.tenant.subscription_id}/resourceGroups/rg-soc/providers/Microsoft.Storage"
    storage += "/storageAccounts/stcontosocaptures"
    ip, success_at = w.breakthrough
    activity_pair(
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
    web = web_machine(w.tenant)
    if web is not None:
        activity_pair(
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


def _moment(value: Any, fallback: datetime, now: datetime) -> datetime:
    parsed = parse_moment(value, now) if value is not None else None
    return parsed or fallback


def alerts_and_incidents(w: Writer) -> None:
    """Each Sentinel incident's alerts (SecurityAlert) and the incident itself (SecurityIncident)."""
    incidents = list(w.tenant.incidents) or _demo_incidents(w)
    for position, incident in enumerate(incidents):
        props = incident.get("properties") or {}
        name = str(incident.get("name") or str(incident.get("id", "")).rsplit("/", 1)[-1] or w.guid())
        created = _moment(props.get("createdTimeUtc"), w.ago(1.5 + position), w.now)
        times = _IncidentTimes(
            created=created,
            first=_moment(props.get("firstActivityTimeUtc"), created - timedelta(hours=1), w.now),
            last=_moment(props.get("lastActivityTimeUtc"), created, w.now),
            modified=_moment(props.get("lastModifiedTimeUtc"), created, w.now),
        )
        entities = [e for e in incident.get("entities") or [] if isinstance(e, dict)]
        alert_ids: list[str] = []
        product_names: list[str] = []
        for alert in incident.get("alerts") or []:
            if not isinstance(alert, dict):
                continue
            system_id, product = _security_alert(w, alert, props, entities, times)
            alert_ids.append(system_id)
            product_names.append(product)
        _security_incident(w, incident, name, position, times, alert_ids, product_names)


@dataclass(frozen=True)
class _IncidentTimes:
    created: datetime
    first: datetime
    last: datetime
    modified: datetime


def _security_alert(
    w: Writer, alert: dict[str, Any], props: dict[str, Any], entities: list[dict[str, Any]], times: _IncidentTimes
) -> tuple[str, str]:
    """Writes one alert of an incident; returns its system alert id and product name."""
    tenant = w.tenant
    created, first, last = times.created, times.first, times.last
    nested = alert.get("properties")
    alert_props: dict[str, Any] = nested if isinstance(nested, dict) else alert
    system_id = str(alert_props.get("systemAlertId") or alert.get("name") or w.guid())
    product = str(alert_props.get("productName") or "Azure Sentinel")
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
    return system_id, product


def _security_incident(
    w: Writer,
    incident: dict[str, Any],
    name: str,
    position: int,
    times: _IncidentTimes,
    alert_ids: list[str],
    product_names: list[str],
) -> None:
    props = incident.get("properties") or {}
    created, first, last, modified = times.created, times.first, times.last, times.modified
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
                "tactics": list(section(props, "additionalData", "tactics") or []),
            },
            "ModifiedBy": "Incident created from alert rule",
            "SourceSystem": "Azure",
        },
    )


def _demo_incidents(w: Writer) -> list[dict[str, Any]]:
    """Stand-ins for sentinel.incidents when that section is absent: the two stories as incidents."""
    tenant = w.tenant
    victim = tenant.victim
    account = {
        "kind": "Account",
        "properties": {"accountName": victim.account, "upnSuffix": tenant.domain, "aadUserId": victim.object_id},
    }
    spray_ip = {"kind": "Ip", "properties": {"address": SPRAY_IP}}
    anonymizer = {"kind": "Ip", "properties": {"address": w.breakthrough[0]}}
    web = web_machine(tenant)
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


def threat_intel(w: Writer) -> None:
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
