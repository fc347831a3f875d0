"""The emulated tenant: one document (the same shape as the seed YAML) plus the server's own bookkeeping."""

from __future__ import annotations

import copy
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TENANTS_DIR = Path(__file__).parent / "tenants"
DEFAULT_TENANT = TENANTS_DIR / "demo.yaml"

# Enough for any benchmark run; older entries fall off so a long-running server does not grow without bound.
REQUEST_LOG_LIMIT = 200_000


@dataclass
class LoggedRequest:
    time: float
    method: str
    path: str
    query: str
    body: Any
    status: int
    service: str
    pattern: str
    duration_ms: float = 0.0  # time spent inside the emulator (pipeline + handler), not on the wire

    def as_json(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "body": self.body,
            "status": self.status,
            "service": self.service,
            "pattern": self.pattern,
            "durationMs": round(self.duration_ms, 3),
        }


@dataclass
class Cloud:
    """Everything the services share. Handlers run on one event loop, so a read-modify-write with no await between
    is atomic; long-running operations keep their progress here too.

    `runtime` is scratch space rebuilt on every replace/reset. What must outlive a reset lives in its own field:
    the request log, the webhook sink, and `controls` (faults and rate limits; only DELETE on the admin API clears
    them). `controls` is also exposed as runtime["controls"] for code that looks there."""

    seed_path: Path = DEFAULT_TENANT
    doc: dict[str, Any] = field(default_factory=dict)
    seed: dict[str, Any] = field(default_factory=dict)
    request_log: deque[LoggedRequest] = field(default_factory=lambda: deque(maxlen=REQUEST_LOG_LIMIT))
    sink: list[dict[str, Any]] = field(default_factory=list)  # webhook posts received on /_sink/{name}
    base_url: str = ""
    ca_path: str = ""
    identity_header: str = ""
    controls: Any = None  # local.cloud.controls.Controls, set by build_app
    signing_keys: Any = None  # oidc.KeyRing, set by the login provider; the interactive sign-in signs with it too
    # per-service scratch space (operations in flight, caches) that is rebuilt on reset
    runtime: dict[str, Any] = field(default_factory=dict)
    generation: int = 0  # bumped whenever doc is replaced, so caches (e.g. the KQL database) know to rebuild
    loaded_at: float = 0.0  # when doc was last replaced: the "now" that relative times (now-3h, log rows) refer to

    def load_seed(self, path: Path | None = None) -> None:
        if path is not None:
            self.seed_path = path
        with open(self.seed_path, encoding="utf-8") as f:
            self.seed = yaml.safe_load(f) or {}
        self.replace(self.seed)

    def replace(self, doc: dict[str, Any]) -> None:
        """Makes `doc` the live tenant. Expansion runs on a copy first, so a doc that fails leaves the state as is."""
        from local.cloud import seed as seed_module  # expands generators (log rows) and fills derived fields

        expanded = seed_module.expand(copy.deepcopy(doc))
        self.doc = expanded
        self.runtime = {"controls": self.controls} if self.controls is not None else {}
        self.generation += 1
        self.loaded_at = time.time()

    def reset(self) -> None:
        self.replace(self.seed)

    def log(self, entry: LoggedRequest) -> None:
        self.request_log.append(entry)
