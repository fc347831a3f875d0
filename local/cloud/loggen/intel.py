"""The demo's enrichment sources: STIX threat intelligence (ThreatIntelIndicators) naming the attacker's address,
a phishing domain and a payload hash, next to indicators that must not match (expired, deactivated, an older
version); and Sentinel watchlists (Watchlist): VIP users with the victim among them, protected accounts with the
emergency access accounts, the trusted office networks. Written after everything else, so the rows generated before
them stay exactly as they were."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from local.cloud.loggen.tenant import ANONYMIZER, OFFICE_IPS, SPRAY_IP, SPRAY_SOURCES
from local.cloud.loggen.writer import Writer

PHISHING_DOMAIN = "contoso-sso-login.example"
PAYLOAD_SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"  # the malware alert's file hash


def stix_indicators(w: Writer) -> None:
    ip_key = "ipv4-addr:value"
    _stix(w, ip_key, SPRAY_IP, 90, "Password spray and RDP brute force infrastructure", "amber", version_hours=72)
    _stix(w, "domain-name:value", PHISHING_DOMAIN, 75, "Credential phishing site imitating Contoso sign-in", "green")
    _stix(w, "file:hashes.'SHA-256'", PAYLOAD_SHA256, 85, "Loader dropped after web server compromise", "amber")
    # Indicators that name addresses of the story but must not match: expired, and deactivated.
    _stix(w, ip_key, ANONYMIZER[0], 60, "Anonymizing VPN exit node", "white", valid_days=-2)
    _stix(w, ip_key, SPRAY_SOURCES[2][0], 40, "Scanner (false positive, deactivated)", "white", active=False)


def _stix(
    w: Writer,
    key: str,
    value: str,
    confidence: int,
    description: str,
    tlp: str,
    *,
    valid_days: int = 60,
    active: bool = True,
    version_hours: float | None = None,
) -> None:
    indicator_id = f"indicator--{w.guid()}"
    created = w.ago(24.0 * 20)
    versions = [w.ago(version_hours)] if version_hours is not None else []
    for position, modified in enumerate([*versions, w.ago(26.0)]):
        latest = position == len(versions)
        w.add(
            "ThreatIntelIndicators",
            {
                "TimeGenerated": modified,
                "AzureTenantId": w.tenant.tenant_id,
                "WorkspaceId": w.tenant.workspace_id,
                "Id": indicator_id,
                "Source": "Premium Microsoft Defender Threat Intelligence",
                "Created": created,
                "Modified": modified,
                "ValidFrom": created,
                "ValidUntil": w.now + timedelta(days=valid_days),
                "IsActive": active,
                "IsDeleted": False,
                "Revoked": False,
                # An older version carries a lower confidence: only the latest version may be reported.
                "Confidence": confidence if latest else confidence // 2,
                "Pattern": f"[{key} = '{value}']",
                "ObservableKey": key,
                "ObservableValue": value,
                "Tags": '["riposte-demo"]',
                "Data": _stix_object(indicator_id, created, modified, key, value, confidence, description),
                "AdditionalFields": {"TLPLevel": tlp},
                "LastUpdateMethod": "MDTI",
                "SourceSystem": "Premium Microsoft Defender Threat Intelligence",
            },
        )


def _stix_object(
    indicator_id: str, created: datetime, modified: datetime, key: str, value: str, confidence: int, description: str
) -> dict[str, Any]:
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": indicator_id,
        "created": created.isoformat(),
        "modified": modified.isoformat(),
        "name": value,
        "description": description,
        "indicator_types": ["malicious-activity"],
        "pattern": f"[{key} = '{value}']",
        "pattern_type": "stix",
        "confidence": confidence,
    }


def watchlists(w: Writer) -> None:
    """VIPUsers (keyed by UPN), ProtectedAccounts (UPN), TrustedNetworks (IP range or address)."""
    victim, admin = w.tenant.victim, w.tenant.admin
    vips = [(victim.upn, {"UserPrincipalName": victim.upn, "Name": victim.display_name, "Reason": "Finance approver"})]
    if admin is not None:
        vips.append((admin.upn, {"UserPrincipalName": admin.upn, "Name": admin.display_name, "Reason": "IT director"}))
    for alias, key, items in (
        ("VIPUsers", "UserPrincipalName", vips),
        (
            "ProtectedAccounts",
            "UserPrincipalName",
            [
                (p.upn, {"UserPrincipalName": p.upn, "Reason": "Emergency access account"})
                for p in w.tenant.people
                if p.account.startswith("breakglass")
            ],
        ),
        ("TrustedNetworks", "IPAddress", [(ip, {"IPAddress": ip, "Site": "Amsterdam office"}) for ip in OFFICE_IPS]),
    ):
        for search, item in items:
            _watchlist_item(w, alias, key, search, item)
    # A VIP who left the list: the deletion is the latest version of the item, so she no longer matches.
    others = [p for p in w.tenant.people if p != victim and not p.privileged]
    if others:
        former = others[0]
        item = {"UserPrincipalName": former.upn, "Name": former.display_name, "Reason": "Former board member"}
        _watchlist_item(w, "VIPUsers", "UserPrincipalName", former.upn, item, deleted=True)


def _watchlist_item(
    w: Writer, alias: str, key: str, search: str, item: dict[str, Any], *, deleted: bool = False
) -> None:
    item_id = w.guid()
    created = w.ago(24.0 * 5)
    statuses = [("Create", created)] + ([("Delete", w.ago(12.0))] if deleted else [])
    for status, moment in statuses:
        w.add(
            "Watchlist",
            {
                "TimeGenerated": moment,
                "AzureTenantId": w.tenant.tenant_id,
                "WatchlistId": alias,
                "WatchlistName": alias,
                "WatchlistAlias": alias,
                "WatchlistCategory": "",
                "Source": f"{alias}.csv",
                "Provider": "Custom",
                "Notes": "",
                "Tags": "[]",
                "SearchKey": search,
                "WatchlistItemId": item_id,
                "WatchlistItem": {**item, key: search},
                "CreatedBy": {"name": "SOC automation"},
                "UpdatedBy": {"name": "SOC automation"},
                "CreatedTimeUTC": created,
                "LastUpdatedTimeUTC": moment,
                "TimeToLive": w.now + timedelta(days=365),
                "_DTItemId": item_id,
                "_DTItemType": "watchlist-item",
                "_DTItemStatus": status,
                "_DTTimestamp": moment,
            },
        )
