"""Microsoft Graph's sign-in log and risky service principals against the real msgraph-sdk GraphServiceClient
(async, kiota models), through the emulated managed identity: the shapes parse into the SDK's models, $filter on
the documented properties, paging, 404 and 403."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.identity.aio import DefaultAzureCredential
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.audit_logs.sign_ins.sign_ins_request_builder import SignInsRequestBuilder
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.risk_level import RiskLevel
from msgraph.generated.models.risk_state import RiskState

from tests.contract.test_graph import ADELE, graph_client

SPRAY_IP = "203.0.113.66"
CI_DEPLOY = "7d3e9a41-2c5b-4f8e-9a6d-1b0c2e3f4a51"


@pytest.fixture
async def credential() -> AsyncIterator[DefaultAzureCredential]:
    async with DefaultAzureCredential() as cred:
        yield cred


def signins_query(filter_text: str, top: int | None = None) -> RequestConfiguration[Any]:
    query = SignInsRequestBuilder.SignInsRequestBuilderGetQueryParameters(filter=filter_text, top=top)
    return RequestConfiguration(query_parameters=query)


async def test_a_users_signins_parse_into_the_sdk_models(cloud, credential):
    client = graph_client(cloud, credential)
    since = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    page = await client.audit_logs.sign_ins.get(signins_query(f"userId eq '{ADELE}' and createdDateTime ge {since}"))
    assert page is not None and page.value
    signins = page.value
    day_ago = datetime.now(UTC) - timedelta(days=1)
    times = [s.created_date_time for s in signins if s.created_date_time is not None]
    assert len(times) == len(signins) and all(s.user_id == ADELE for s in signins) and min(times) >= day_ago
    assert times == sorted(times, reverse=True)  # newest first, as the service answers
    sprayed = [s for s in signins if s.ip_address == SPRAY_IP]
    assert sprayed and all(s.status and s.status.error_code == 50126 for s in sprayed)  # invalid username or password
    assert any(s.location and s.location.country_or_region == "RU" for s in sprayed)
    risky = [s for s in signins if s.risk_level_during_sign_in == RiskLevel.High]
    assert risky and risky[0].risk_state == RiskState.AtRisk
    assert risky[0].status is not None and risky[0].status.error_code == 0


async def test_signins_page_with_the_next_link(cloud, credential):
    client = graph_client(cloud, credential)
    first = await client.audit_logs.sign_ins.get(signins_query(f"userId eq '{ADELE}'", top=5))
    assert first is not None and first.value is not None and len(first.value) == 5 and first.odata_next_link
    second = await client.audit_logs.sign_ins.with_url(first.odata_next_link).get()
    assert second is not None and second.value is not None
    assert {s.id for s in second.value}.isdisjoint({s.id for s in first.value})


async def test_an_unsupported_filter_is_a_400(cloud, credential):
    client = graph_client(cloud, credential)
    with pytest.raises(ODataError) as raised:
        await client.audit_logs.sign_ins.get(signins_query("deviceDetail/browser eq 'x'"))
    assert raised.value.response_status_code == 400


async def test_the_risky_service_principal(cloud, credential):
    client = graph_client(cloud, credential)
    risky = await client.identity_protection.risky_service_principals.by_risky_service_principal_id(CI_DEPLOY).get()
    assert risky is not None and risky.display_name == "ci-deploy-prod"
    assert risky.risk_level == RiskLevel.High and risky.risk_state == RiskState.AtRisk
    every = await client.identity_protection.risky_service_principals.get()
    assert every is not None and [p.id for p in every.value or []] == [CI_DEPLOY]
    with pytest.raises(ODataError) as raised:
        await client.identity_protection.risky_service_principals.by_risky_service_principal_id(ADELE).get()
    assert raised.value.response_status_code == 404


async def test_without_the_permission_the_log_is_refused(cloud, credential):
    doc = cloud.tenant()
    doc["tenant"]["riposteIdentity"]["graphPermissions"].remove("AuditLog.Read.All")
    cloud.admin.put("/tenant", json=doc).raise_for_status()
    with pytest.raises(ODataError) as raised:
        await graph_client(cloud, credential).audit_logs.sign_ins.get()
    assert raised.value.response_status_code == 403
