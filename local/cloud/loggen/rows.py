"""How a row of each table is written: a sign-in, a Windows or sshd logon event, a firewall record, a directory
audit record, an Azure activity pair, a Sentinel alert and incident. The background and the stories decide who,
when and from where."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from local.cloud.loggen.schemas import Row
from local.cloud.loggen.tenant import (
    DEVICES,
    MOSCOW,
    RESULT_DESCRIPTIONS,
    USER_AGENTS,
    Machine,
    Person,
    Place,
    id_part,
)
from local.cloud.loggen.writer import Writer, iso


def signin(
    w: Writer,
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
    status = _signin_status(result)
    correlation = w.guid()
    w.add(
        "SigninLogs",
        {
            **_signin_envelope(tenant.tenant_id, when, result, correlation, interactive),
            "Identity": person.display_name,
            "Level": "4",
            "Location": place.country,
            "AlternateSignInName": person.upn,
            "AppDisplayName": app_name,
            "AppId": app_id,
            "AuthenticationDetails": json.dumps(
                [
                    {
                        "authenticationStepDateTime": iso(when),
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


def _signin_status(result: str) -> dict[str, Any]:
    code = int(result)
    status: dict[str, Any] = {"errorCode": code}
    if code:
        status["failureReason"] = RESULT_DESCRIPTIONS.get(result, "Other")
    else:
        status["additionalDetails"] = "MFA requirement satisfied by claim in the token"
    return status


def _signin_envelope(tenant_id: str, when: datetime, result: str, correlation: str, interactive: bool) -> Row:
    """The columns every Entra ID sign-in record starts with (the diagnostic settings' envelope)."""
    code = int(result)
    return {
        "SourceSystem": "Azure AD",
        "TimeGenerated": when,
        "ResourceId": f"/tenants/{tenant_id}/providers/Microsoft.aadiam",
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
    }


def device_from(user_agent: str) -> dict[str, Any]:
    systems = (("Windows NT", "Windows10"), ("iPhone", "Ios"), ("Android", "Android"), ("Mac OS X", "MacOs"))
    system = next((name for marker, name in systems if marker in user_agent), "Linux")
    browser = re.search(r"(Edg|Firefox|Chrome|Safari)/([\d.]+)", user_agent)
    label = {"Edg": "Edge"}.get(browser.group(1), browser.group(1)) if browser else "Unknown"
    return {"operatingSystem": system, "browser": f"{label} {browser.group(2)}" if browser else label}


def _windows_event(w: Writer, machine: Machine, when: datetime, event_id: int, values: Row) -> None:
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


def logon(w: Writer, machine: Machine, when: datetime, user: str, domain: str, logon_type: int, ip: str) -> None:
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
    logoff = when + timedelta(minutes=w.rng.randint(5, 90))
    if logoff <= w.now:  # a session that has not ended yet has no logoff event (none in the future)
        _windows_event(
            w, machine, logoff, 4634, {**common, "LogonType": logon_type, "LogonTypeName": _LOGON_TYPES[logon_type]}
        )


def failed_logon(w: Writer, machine: Machine, when: datetime, user: str, ip: str) -> None:
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


def sshd_failure(w: Writer, machine: Machine, when: datetime, user: str, ip: str) -> None:
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


def firewall_row(
    w: Writer,
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


def audit_row(
    w: Writer,
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


def activity_pair(
    w: Writer,
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
    group = id_part(resource, "resourceGroups")
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
