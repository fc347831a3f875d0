"""Fixtures shared by every test layer."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

FIXTURES = Path(__file__).parent / "fixtures"
PUBLISHED = FIXTURES / "published"


class CloudHandle:
    """What a test needs of a running emulated cloud: its URL, CA, admin API and SDK credentials."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.url: str = server.url
        self.ca_path: str = str(server.certs.ca_path)
        self.admin = httpx.Client(base_url=f"{self.url}/_admin", verify=self.ca_path, timeout=30)

    def reset(self) -> None:
        self.admin.post("/reset").raise_for_status()
        self.admin.delete("/requests").raise_for_status()
        self.admin.delete("/faults").raise_for_status()
        self.admin.delete("/limits").raise_for_status()
        self.admin.delete("/sink").raise_for_status()

    def requests(self, **filters: str) -> list[dict[str, Any]]:
        response = self.admin.get("/requests", params=filters)
        response.raise_for_status()
        entries: list[dict[str, Any]] = response.json()["value"]
        return entries

    def writes(self) -> list[dict[str, Any]]:
        return [r for r in self.requests() if r["method"] in ("PUT", "PATCH", "POST", "DELETE")]

    READ_ONLY_POSTS = ("/query", "/$batch", "/entities", "/alerts", "/effectivenetworksecuritygroups", "/querystatus")

    def changes(self) -> list[dict[str, Any]]:
        """Requests that change the tenant: writes, less the POSTs that only read (KQL, entities, queryStatus...)."""
        return [w for w in self.writes() if not w["path"].lower().endswith(self.READ_ONLY_POSTS)]

    def tenant(self) -> dict[str, Any]:
        response = self.admin.get("/tenant")
        response.raise_for_status()
        doc: dict[str, Any] = response.json()
        return doc

    def add_fault(self, **spec: Any) -> None:
        self.admin.post("/faults", json=spec).raise_for_status()

    def clear_requests(self) -> None:
        self.admin.delete("/requests").raise_for_status()

    def set_tags(self, resource_id: str, tags: dict[str, str]) -> None:
        """Adds tags to an ARM resource of the tenant (ids compare case-insensitively, as ARM's do)."""
        doc = self.tenant()
        for found in doc["arm"]["resources"]:
            if found["id"].lower() == resource_id.lower():
                found["tags"] = {**found.get("tags", {}), **tags}
        self.admin.put("/tenant", json=doc).raise_for_status()


def _refresh_aiohttp_default_ssl_context() -> None:
    """aiohttp builds its default SSL context when it is imported, reading SSL_CERT_FILE then. If a test module
    imported it (azure.storage.queue does) before this session trusted the emulated cloud's CA, the async clients
    that rely on SSL_CERT_FILE would not trust it. Product code passes the CA explicitly (RIPOSTE_CA_BUNDLE)."""
    import sys

    connector = sys.modules.get("aiohttp.connector")
    if connector is not None:
        connector._SSL_CONTEXT_VERIFIED = connector._make_ssl_context(True)  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def cloud_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One emulated cloud per test session, in a background thread, on a free port, with its own CA."""
    from local.cloud.server import CloudServer, free_port

    server = CloudServer(port=free_port(), directory=tmp_path_factory.mktemp("cloud"))
    server.start()
    saved = {k: os.environ.get(k) for k in server.client_environment()}
    os.environ.update(server.client_environment())
    _refresh_aiohttp_default_ssl_context()
    yield server
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    server.stop()


@pytest.fixture
def cloud(cloud_server: Any) -> Iterator[CloudHandle]:
    """The running emulated cloud, reset to the demo tenant with an empty request log and webhook sink, no faults,
    no limits."""
    handle = CloudHandle(cloud_server)
    handle.reset()
    yield handle
    handle.admin.close()
