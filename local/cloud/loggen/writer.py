"""The writer every generator writes its rows through: one seeded random generator, so the output is reproducible,
and the facts the stories share (who signed in from where, where the victim's password worked)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from local.cloud.loggen.schemas import TABLES, Row, Tables
from local.cloud.loggen.tenant import ANONYMIZER, SPRAY_SOURCES, Place, Tenant, place_from


class Writer:
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
                self.places[str(detection["ipAddress"])] = place_from(detection["location"])

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


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
