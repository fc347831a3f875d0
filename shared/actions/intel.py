"""Threat intelligence and watchlists in the Sentinel workspace, by named KQL queries.

loganalytics.lookup_threat_intel reads both threat intelligence tables: the legacy ThreatIntelligenceIndicator and
the STIX ThreatIntelIndicators that replaces it (a workspace may hold either or both; `union isfuzzy=true` lets a
missing one be). Each indicator counts once, in its latest version, and only while active and unexpired.
loganalytics.lookup_watchlist reads any watchlist by alias through Sentinel's _GetWatchlist function, matching the
item's search key. Both take their values only through the literal builder, typed as the query declares them."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from shared.actions.context import ActionContext
from shared.actions.loganalytics import LOG_ANALYTICS_READER, LogsParams, LogsResult, Lookback, run_rows
from shared.actions.registry import enricher

Kind = Literal["ip", "domain", "url", "file_hash"]
_ALIAS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")


class ThreatIntelParams(LogsParams):
    ip: str | None = Field(None, description="An IPv4 or IPv6 address")
    domain: str | None = Field(None, description="A domain name")
    url: str | None = Field(None, description="A URL, exactly as the indicator records it")
    file_hash: str | None = Field(None, description="An MD5, SHA1 or SHA256 digest")
    lookback: Lookback = Field("14d", description="How far back indicators were ingested (or refreshed)")

    @model_validator(mode="after")
    def _one(self) -> ThreatIntelParams:
        if sum(v is not None for v in (self.ip, self.domain, self.url, self.file_hash)) != 1:
            raise ValueError("give exactly one of ip, domain, url or fileHash")
        return self

    @property
    def observable(self) -> tuple[Kind, str]:
        kinds: tuple[Kind, ...] = ("ip", "domain", "url", "file_hash")
        return next((k, v) for k in kinds if (v := getattr(self, k)) is not None)


class IndicatorMatch(LogsResult):
    table: str
    indicator_id: str
    source: str
    confidence: int | None
    description: str
    threat_types: str
    valid_until: datetime | None
    tlp: str


class ThreatIntel(LogsResult):
    indicator: str
    kind: Kind
    matched: bool
    max_confidence: int | None = Field(description="The highest confidence among the matches")
    matches: list[IndicatorMatch]


def _text(row: dict[str, Any], column: str) -> str:
    value = row.get(column)
    return "" if value is None else str(value)


@enricher(
    "loganalytics.lookup_threat_intel",
    summary="Threat intelligence naming an IP, domain, URL or file hash: active indicators from both TI tables (KQL)",
    params=ThreatIntelParams,
    permissions=LOG_ANALYTICS_READER,
)
async def lookup_threat_intel(ctx: ActionContext, params: ThreatIntelParams) -> ThreatIntel:
    kind, value = params.observable
    values: dict[str, Any] = {kind: value, "lookback": params.lookback}
    rows = await run_rows(ctx, f"threat_intel_{kind}", params.workspace_id, **values)
    matches = [
        IndicatorMatch(
            table=_text(row, "Table"),
            indicator_id=_text(row, "IndicatorId"),
            source=_text(row, "Source"),
            confidence=row.get("Confidence"),
            description=_text(row, "Description"),
            threat_types=_text(row, "ThreatTypes"),
            valid_until=row.get("ValidUntil"),
            tlp=_text(row, "Tlp").lower(),
        )
        for row in rows
    ]
    confidences = [m.confidence for m in matches if m.confidence is not None]
    return ThreatIntel(
        indicator=value,
        kind=kind,
        matched=bool(matches),
        max_confidence=max(confidences) if confidences else None,
        matches=matches,
    )


def _alias(value: str) -> str:
    if not _ALIAS.match(value):
        raise ValueError("a watchlist alias is letters, digits, '-' and '_', at most 64 characters")
    return value


class WatchlistParams(LogsParams):
    alias: Annotated[str, AfterValidator(_alias)] = Field(description="The watchlist's alias, e.g. VIPUsers")
    key: str = Field(min_length=1, max_length=1024, description="The value of the item's search key (case ignored)")


class Watchlist(LogsResult):
    alias: str
    key: str
    matched: bool
    items: list[dict[str, Any]] = Field(description="The matching items, each as the watchlist's columns")


@enricher(
    "loganalytics.lookup_watchlist",
    summary="Whether a value is on a Sentinel watchlist (VIP users, known-good IPs...) and its items (KQL)",
    params=WatchlistParams,
    permissions=LOG_ANALYTICS_READER,
)
async def lookup_watchlist(ctx: ActionContext, params: WatchlistParams) -> Watchlist:
    rows = await run_rows(ctx, "watchlist_lookup", params.workspace_id, alias=params.alias, key=params.key)
    items = [row["WatchlistItem"] for row in rows if isinstance(row.get("WatchlistItem"), dict)]
    return Watchlist(alias=params.alias, key=params.key, matched=bool(rows), items=items)
