"""The emulated Defender for Endpoint API as the adapter (azure-core pipeline, managed-identity token) sees it:
error shapes, authentication by audience, filters, state transitions, and the adapter's retry choices."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from shared.azure.clients import AzureClients
from shared.azure.errors import AzureError, NotFound
from shared.azure.mde import MdeAdapter
from tests.actions.conftest import cloud_settings
from tests.conftest import CloudHandle

LAPTOP = "9a8b7c6d5e4f30211f2e3d4c5b6a79880a1b2c3d"


@pytest.fixture
async def mde(cloud: CloudHandle) -> AsyncIterator[MdeAdapter]:
    clients = AzureClients(cloud_settings(cloud, max_retries=2))
    yield clients.mde
    await clients.close()


async def test_machines_by_id_and_by_filter(mde):
    machine = await mde.get_machine(LAPTOP.upper())
    assert (machine["id"], machine["osPlatform"], machine["aadDeviceId"]) == (
        LAPTOP,
        "Windows11",
        "3d2c1b0a-9f8e-4d7c-8b6a-5f4e3d2c1b0a",
    )
    assert "@odata.context" not in machine and "logonUsers" not in machine and "failActions" not in machine
    found = await mde.find_machines("startswith(computerDnsName,'ws-adele')")
    assert [m["id"] for m in found] == [LAPTOP]
    assert await mde.find_machines("computerDnsName eq 'nowhere'") == []  # the API's 404 for no match


async def test_errors_come_in_the_api_shape(cloud, mde):
    with pytest.raises(NotFound) as missing:
        await mde.get_machine("0" * 40)
    assert missing.value.code == "ResourceNotFound"
    with pytest.raises(AzureError) as unsupported:
        await mde.find_machines("osVersion eq '1'")
    assert (unsupported.value.status, unsupported.value.code) == (400, "InvalidRequest")
    async with httpx.AsyncClient(verify=cloud.ca_path) as client:
        response = await client.get(f"{cloud.url}/api/machines/{LAPTOP}")
    assert response.status_code == 401 and response.json()["error"]["code"] == "Unauthorized"
    assert set(response.json()["error"]) == {"code", "message", "target"}


async def test_a_token_for_another_api_is_refused(cloud):
    clients = AzureClients(cloud_settings(cloud))
    token = await clients.credential.get_token("https://graph.microsoft.com/.default")
    await clients.close()
    headers = {"Authorization": f"Bearer {token.token}"}
    async with httpx.AsyncClient(verify=cloud.ca_path) as client:
        response = await client.get(f"{cloud.url}/api/machines/{LAPTOP}", headers=headers)
    assert response.status_code == 401


async def test_an_action_moves_pending_in_progress_succeeded(cloud, mde):
    doc = cloud.tenant()
    doc["mde"]["settings"] = {"pickupSeconds": 0.2, "completeSeconds": 0.5}
    cloud.admin.put("/tenant", json=doc).raise_for_status()
    action = await mde.start_machine_action(LAPTOP, "Isolate", {"Comment": "c", "IsolationType": "Full"})
    assert (action["status"], action["type"], action["scope"]) == ("Pending", "Isolate", "Full")
    with pytest.raises(AzureError) as busy:
        await mde.start_machine_action(LAPTOP, "Isolate", {"Comment": "again"})
    assert (busy.value.status, busy.value.code) == (400, "ActiveRequestAlreadyExists")
    await asyncio.sleep(0.25)
    assert (await mde.get_machine_action(action["id"]))["status"] == "InProgress"
    await asyncio.sleep(0.3)
    assert (await mde.get_machine_action(action["id"]))["status"] == "Succeeded"
    [listed, *_] = await mde.list_machine_actions(LAPTOP)
    assert listed["id"] == action["id"]


async def test_a_scan_needs_its_type_and_a_comment(mde):
    with pytest.raises(AzureError, match="ScanType is required"):
        await mde.start_machine_action(LAPTOP, "RunAntiVirusScan", {"Comment": "c"})
    with pytest.raises(AzureError, match="Comment is required"):
        await mde.start_machine_action(LAPTOP, "RunAntiVirusScan", {"ScanType": "Quick"})


async def test_a_throttled_post_is_retried_and_a_failed_one_is_not(cloud, mde):
    cloud.add_fault(match="POST */isolate", status=429, retryAfter=1, count=1)
    action = await mde.start_machine_action(LAPTOP, "Isolate", {"Comment": "c"})
    assert action["status"] == "Pending"

    cloud.add_fault(match="POST */runAntiVirusScan", status=503, count=1)
    with pytest.raises(AzureError) as unavailable:
        await mde.start_machine_action(LAPTOP, "RunAntiVirusScan", {"Comment": "c", "ScanType": "Quick"})
    assert unavailable.value.status == 503 and unavailable.value.retryable
    posts = [r["status"] for r in cloud.requests(service="mde") if r["method"] == "POST"]
    assert posts == [429, 201, 503]  # the 503 may have created the action: not sent twice

    cloud.add_fault(match="GET */machines/*", status=503, count=1)
    assert (await mde.get_machine(LAPTOP))["id"] == LAPTOP  # a read is retried


async def test_the_package_link_exists_only_once_the_collection_succeeded(cloud, mde):
    action = await mde.start_machine_action(LAPTOP, "CollectInvestigationPackage", {"Comment": "c"})
    with pytest.raises(NotFound):
        await mde.package_uri(action["id"])
    await asyncio.sleep(1.1)
    link = await mde.package_uri(action["id"])
    assert link.startswith(cloud.url) and "token=" in link
