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

The package: ``schemas`` (the tables and their columns), ``tenant`` (what the generator reads from the document and the
demo facts), ``writer`` (the seeded writer), ``rows`` (how a row of each table is written), ``background`` (everyday
activity), ``stories`` (the demo's stories), ``explicit`` (the document's own rows).

The stories told for the demo: adele.vance gets a password spray from several foreign IPs (203.0.113.66 and
198.51.100.23 among them) over the last 24 h, then a successful risky sign-in from an anonymizing IP (her
anonymizedIPAddress risk detection when Graph has one); 203.0.113.66 also sprays two other accounts, is denied by the
perimeter firewall (CommonSecurityLog) towards vm-web-01 and is the source of logon failures there (SecurityEvent
4625, and sshd lines in Syslog when the VM runs Linux). Every Graph risk detection gets its sign-in and every
Sentinel incident its alerts (SecurityAlert, entities in the legacy dialect), its SecurityIncident row and sign-ins
for the accounts and addresses it names. Everyone else has normal background activity. Threat intelligence also
names 203.0.113.66 in the STIX table, and the VIPUsers watchlist names adele.vance (``intel``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from local.cloud.loggen import background, flows, intel, stories, ueba
from local.cloud.loggen.explicit import explicit_row, parse_iso, parse_moment
from local.cloud.loggen.rows import legacy_entities
from local.cloud.loggen.schemas import TABLES, Row, Tables, columns_for
from local.cloud.loggen.tenant import (
    DEFAULT_DAYS,
    DEFAULT_SEED,
    DEMO_WORKSPACE_ID,
    Tenant,
    read_tenant,
    section,
)
from local.cloud.loggen.writer import Writer

__all__ = [
    "DEMO_WORKSPACE_ID",
    "TABLES",
    "Row",
    "Tables",
    "Tenant",
    "columns_for",
    "explicit_row",
    "generate",
    "legacy_entities",
    "parse_iso",
    "parse_moment",
    "read_tenant",
]


def generate(doc: dict[str, Any], now: datetime | None = None) -> Tables:
    """Every table's rows: generated ones (when the doc has logAnalytics.generate) plus the explicit ones."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    settings = section(doc, "logAnalytics", "generate")
    tenant = read_tenant(doc)
    rows: Tables = {table: [] for table in TABLES}
    if isinstance(settings, dict):
        rows = _generated(tenant, now, settings)
    explicit = section(doc, "logAnalytics", "tables") or {}
    if isinstance(explicit, dict):
        for table, items in explicit.items():
            for item in items or []:
                if isinstance(item, dict):
                    rows.setdefault(str(table), []).append(explicit_row(str(table), item, now, tenant.workspace_id))
    for table_rows in rows.values():
        table_rows.sort(key=lambda r: r.get("TimeGenerated") or now)
    return rows


def _generated(tenant: Tenant, now: datetime, settings: dict[str, Any]) -> Tables:
    """The background and the stories, in a fixed order: they share one random generator, so the order is part of
    what makes the rows reproducible."""
    w = Writer(tenant, now, int(settings.get("seed", DEFAULT_SEED)), int(settings.get("days", DEFAULT_DAYS)))
    per_day = int(settings.get("signInsPerUserPerDay", 6))
    background.signins(w, per_day)
    stories.detection_signins(w)
    stories.password_spray(w)
    stories.incident_signins(w)
    background.heartbeats(w, int(settings.get("heartbeatMinutes", 5)))
    background.windows_logons(w)
    stories.logon_brute_force(w)
    background.web_visitors(w)
    stories.perimeter_probes(w)
    background.directory_changes(w)
    stories.persistence(w)
    background.azure_activity(w)
    stories.azure_probing(w)
    stories.alerts_and_incidents(w)
    stories.threat_intel(w)
    background.usage(w)
    # Added later: after everything else, so the rows above stay as they were for the same seed.
    intel.stix_indicators(w)
    intel.watchlists(w)
    ueba.identity_info(w)
    ueba.behavior(w)
    flows.flows(w)
    return w.rows
