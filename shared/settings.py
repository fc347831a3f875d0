"""Every setting Riposte reads, validated once at start with a message that names the bad one."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import cache


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    # Intake limits. 1 MiB is Event Grid's event size limit; a Sentinel incident with 500 entities is already extreme.
    max_body_bytes: int = 1_048_576
    max_entities: int = 500
    max_json_depth: int = 64
    max_events_per_delivery: int = 5000

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        source = os.environ if env is None else env
        values: dict[str, int] = {}
        for field in fields(cls):
            name = env_name(field.name)
            raw = source.get(name)
            if raw is None or raw == "":
                continue
            try:
                value = int(raw)
            except ValueError:
                raise SettingsError(f"{name} must be a whole number (got {raw!r}).") from None
            if value <= 0:
                raise SettingsError(f"{name} must be greater than 0 (got {value}).")
            values[field.name] = value
        return cls(**values)


def env_name(field_name: str) -> str:
    return f"RIPOSTE_{field_name.upper()}"


@cache
def get_settings() -> Settings:
    return Settings.from_env()
