"""Builders for our own intake cases, starting from the demo payloads `make run` plays."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

SAMPLES = Path(__file__).resolve().parents[3] / "local" / "samples"


def sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text(encoding="utf-8"))


def account_trigger() -> dict[str, Any]:
    payload: dict[str, Any] = sample("sentinel-incident-compromised-account.json")
    return payload


def with_entities(payload: dict[str, Any], entities: list[Any] | None) -> dict[str, Any]:
    changed = copy.deepcopy(payload)
    changed["object"]["properties"]["relatedEntities"] = entities
    return changed


def ip_entity(index: int) -> dict[str, Any]:
    address = f"10.{index // 65536 % 256}.{index // 256 % 256}.{index % 256}"
    return {
        "id": f"/entities/ip-{index}",
        "kind": "Ip",
        "type": "Microsoft.SecurityInsights/Entities",
        "properties": {"address": address, "friendlyName": address},
    }
