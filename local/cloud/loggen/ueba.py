"""The demo's UEBA: IdentityInfo for every account (the victim a VIP with a medium blast radius and high priority, the
admins with a high blast radius), and BehaviorAnalytics scoring the victim's breakthrough sign-in and the
authenticator the attacker registered right after, next to everyday activity that UEBA finds unremarkable."""

from __future__ import annotations

from datetime import timedelta

from local.cloud.loggen.tenant import OFFICE_IPS, Person
from local.cloud.loggen.writer import Writer


def identity_info(w: Writer) -> None:
    victim = w.tenant.victim
    for person in w.tenant.people:
        is_victim = person == victim
        w.add(
            "IdentityInfo",
            {
                "TimeGenerated": w.ago(3.0),
                "AccountObjectId": person.object_id,
                "AccountUPN": person.upn,
                "AccountName": person.account,
                "AccountDomain": w.tenant.domain,
                "AccountDisplayName": person.display_name,
                "IsAccountEnabled": True,
                "UserState": "Active",
                "AssignedRoles": ["Global Administrator"] if person.privileged else [],
                "GroupMembership": ["All Staff"] + (["Finance Approvers"] if is_victim else []),
                "Tags": '["VIP"]' if is_victim else ('["Administrator"]' if person.privileged else "[]"),
                "BlastRadius": "High" if person.privileged else ("Medium" if is_victim else "Low"),
                "InvestigationPriority": 8 if is_victim else 0,
                "InvestigationPriorityPercentile": 97 if is_victim else 10,
                "RiskLevel": "High" if is_victim else "None",
                "RiskState": "AtRisk" if is_victim else "None",
                "IsMFARegistered": not is_victim,
                "LastSeenDate": w.ago(1.0),
                "SourceSystem": "UEBA",
            },
        )


def behavior(w: Writer) -> None:
    victim = w.tenant.victim
    ip, success_at = w.breakthrough
    breakthrough = {
        "FirstTimeUserConnectedFromCountry": True,
        "CountryUncommonlyConnectedFromAmongPeers": True,
        "FirstTimeUserConnectedViaISP": True,
        "ISPUncommonlyUsedAmongPeers": True,
        "FirstTimeUserUsedBrowser": True,
    }
    place = w.places.get(ip)
    country = place.country_name if place is not None else ""
    _activity(w, victim, success_at, "LogOn", "Sign-in", ip, country, 9, breakthrough)
    registered = {"FirstTimeUserPerformedAction": True, "ActionUncommonlyPerformedAmongPeers": True}
    when = min(success_at + timedelta(minutes=12), w.now)
    _activity(w, victim, when, "UserManagement", "User registered security info", ip, country, 6, registered)
    for person in w.tenant.people[:4]:  # everyday sign-ins from the office: nothing unusual
        _activity(w, person, w.ago(5.0), "LogOn", "Sign-in", OFFICE_IPS[0], "Netherlands", 0, {})


def _activity(
    w: Writer,
    person: Person,
    when: object,
    activity: str,
    action: str,
    ip: str,
    country: str,
    priority: int,
    insights: dict[str, bool],
) -> None:
    w.add(
        "BehaviorAnalytics",
        {
            "TimeGenerated": when,
            "UserName": person.account,
            "UserPrincipalName": person.upn,
            "ActivityType": activity,
            "ActionType": action,
            "EventSource": "Azure AD",
            "SourceIPAddress": ip,
            "SourceIPLocation": country,
            "SourceDevice": "",
            "DestinationDevice": "",
            "InvestigationPriority": priority,
            "ActivityInsights": insights,
            "UsersInsights": {"AccountDisplayName": person.display_name, "IsDormantAccount": False},
            "DevicesInsights": {},
            "SourceRecordId": w.guid(),
            "SourceSystem": "UEBA",
        },
    )
