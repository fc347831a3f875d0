"""Microsoft Graph v1.0 against the real msgraph-sdk GraphServiceClient (async), authenticated by the real aio
DefaultAzureCredential through the emulated managed identity. Shapes are compared with the published examples."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.identity.aio import DefaultAzureCredential
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_http.middleware.options import RetryHandlerOption
from msgraph.generated.identity_protection.risk_detections.risk_detections_request_builder import (
    RiskDetectionsRequestBuilder,
)
from msgraph.generated.identity_protection.risky_users.confirm_compromised.confirm_compromised_post_request_body import (  # noqa: E501
    ConfirmCompromisedPostRequestBody,
)
from msgraph.generated.identity_protection.risky_users.dismiss.dismiss_post_request_body import (
    DismissPostRequestBody,
)
from msgraph.generated.identity_protection.risky_users.risky_users_request_builder import RiskyUsersRequestBuilder
from msgraph.generated.models.directory_role import DirectoryRole
from msgraph.generated.models.group import Group
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.risk_level import RiskLevel
from msgraph.generated.models.risk_state import RiskState
from msgraph.generated.models.user import User
from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph.graph_service_client import GraphServiceClient

from tests.conftest import PUBLISHED

GRAPH_SCOPES = ["https://graph.microsoft.com/.default"]
ADELE = "1c9f2b8e-4a3d-4e6f-8b1c-2d3e4f5a6b01"
ALEX = "1c9f2b8e-4a3d-4e6f-8b1c-2d3e4f5a6b03"
LEE = "1c9f2b8e-4a3d-4e6f-8b1c-2d3e4f5a6b04"
BREAKGLASS = "1c9f2b8e-4a3d-4e6f-8b1c-2d3e4f5a6b05"
GRADY = "1c9f2b8e-4a3d-4e6f-8b1c-2d3e4f5a6b13"
GLOBAL_ADMIN_ROLE = "8d3f6a1b-0c2e-4b7d-9e5f-1a2b3c4d5e01"
BREAK_GLASS_GROUP = "5e0a7c3d-2b1f-4a6e-9c8d-7f6e5d4c3b01"
TIER0_GROUP = "5e0a7c3d-2b1f-4a6e-9c8d-7f6e5d4c3b04"


def published(name: str) -> Any:
    return json.loads((PUBLISHED / "graph" / name).read_text())


def graph_client(cloud: Any, credential: DefaultAzureCredential, base_url: str | None = None) -> GraphServiceClient:
    """The product's production constructor, pointed at the emulator: only base_url changes (TLS trusts the
    emulator's CA through SSL_CERT_FILE, set by the cloud_server fixture)."""
    client = GraphServiceClient(credentials=credential, scopes=GRAPH_SCOPES)
    client.request_adapter.base_url = base_url or f"{cloud.url}/v1.0"
    return client


def retries(max_retries: int) -> RequestConfiguration[Any]:
    """Per-request retry settings (the default handler waits 3 s + backoff when there is no Retry-After)."""
    return RequestConfiguration(options=[RetryHandlerOption(delay=0, max_retries=max_retries)])


@pytest.fixture
async def credential() -> AsyncIterator[DefaultAzureCredential]:
    async with DefaultAzureCredential() as cred:
        yield cred


@pytest.fixture
def graph(cloud: Any, credential: DefaultAzureCredential) -> GraphServiceClient:
    return graph_client(cloud, credential)


def users_query(**kw: Any) -> RequestConfiguration[Any]:
    return RequestConfiguration(query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(**kw))


def same_shape(actual: dict[str, Any], example: dict[str, Any], *, ignore: set[str] | None = None) -> None:
    """Same keys, and each value of the same JSON type (null in either is allowed)."""
    ignore = ignore or set()
    assert set(actual) - ignore == set(example) - ignore
    for key, value in example.items():
        if key in ignore or value is None or actual[key] is None:
            continue
        assert type(actual[key]) is type(value), f"{key}: {type(actual[key]).__name__} vs {type(value).__name__}"


def raw(cloud: Any, path: str, **params: str) -> dict[str, Any]:
    """The JSON as sent on the wire (the SDK hides the keys), with a token from the same managed identity."""
    from azure.identity import DefaultAzureCredential as SyncCredential

    token = SyncCredential().get_token(*GRAPH_SCOPES).token
    with httpx.Client(base_url=cloud.url, verify=cloud.ca_path) as http:
        response = http.get(path, params=params, headers={"Authorization": f"Bearer {token}"})
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


# ---------------------------------------------------------------------------------------------------- users


async def test_get_user_by_id_returns_the_default_property_set(graph, cloud):
    user = await graph.users.by_user_id(ADELE).get()
    assert user is not None
    assert user.user_principal_name == "adele.vance@contoso.com"
    assert user.display_name == "Adele Vance"
    assert user.job_title == "Retail Manager"
    assert user.account_enabled is None  # not in the default set, exactly like real Graph
    body = raw(cloud, f"/v1.0/users/{ADELE}")
    assert body["@odata.context"] == "https://graph.microsoft.com/v1.0/$metadata#users/$entity"
    same_shape({k: v for k, v in body.items() if k != "@odata.context"}, published("users_get_response_v1.json"))


async def test_get_user_by_upn_with_select(graph, cloud):
    query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(
        select=["displayName", "accountEnabled", "department", "identities"]
    )
    user = await graph.users.by_user_id("Adele.Vance@contoso.com").get(RequestConfiguration(query_parameters=query))
    assert user is not None
    assert (user.display_name, user.account_enabled, user.department) == ("Adele Vance", True, "Retail")
    assert user.identities is not None and user.identities[0].issuer_assigned_id == "adele.vance@contoso.com"
    assert user.id is None  # $select returns only what was asked for
    body = raw(
        cloud, "/v1.0/users/adele.vance@contoso.com", **{"$select": "displayName,givenName,postalCode,identities"}
    )
    example = published("users_get_select_response_v1.json")
    assert body["@odata.context"] == example["@odata.context"]
    same_shape(body, example)


async def test_unknown_user_raises_odata_error_404(graph):
    with pytest.raises(ODataError) as caught:
        await graph.users.by_user_id("nobody@contoso.com").get()
    assert caught.value.response_status_code == 404
    assert caught.value.error is not None
    assert caught.value.error.code == "Request_ResourceNotFound"
    assert "nobody@contoso.com" in (caught.value.error.message or "")


async def test_list_users_pages_with_next_link(graph, cloud):
    first = await graph.users.get(users_query(top=5, select=["id", "userPrincipalName"]))
    assert first is not None and first.value is not None and len(first.value) == 5
    seen = [u.user_principal_name for u in first.value]
    page = first
    while page.odata_next_link:
        assert page.odata_next_link.startswith(f"{cloud.url}/v1.0/users?")
        page = await graph.users.with_url(page.odata_next_link).get()
        assert page is not None and page.value is not None
        seen += [u.user_principal_name for u in page.value]
    assert len(seen) == len(set(seen)) == len(cloud.tenant()["graph"]["users"])
    assert seen[0] == "adele.vance@contoso.com"


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("startswith(displayName,'A')", {"adele.vance@contoso.com", "alex.wilber@contoso.com"}),
        ("accountEnabled eq false", {"grady.archie@contoso.com"}),
        ("department eq 'Finance' and startswith(userPrincipalName,'patti')", {"patti.fernandez@contoso.com"}),
        (
            "jobTitle eq 'SOC Lead' or mail eq 'JOHANNA.LORENZ@contoso.com'",
            {"irvin.sayers@contoso.com", "johanna.lorenz@contoso.com"},
        ),
        (f"id eq '{LEE}'", {"lee.gu@contoso.com"}),
        (
            "userPrincipalName in ('lee.gu@contoso.com', 'megan.bowen@contoso.com')",
            {"lee.gu@contoso.com", "megan.bowen@contoso.com"},
        ),
        (
            "(department eq 'Marketing' or department eq 'HR') and accountEnabled eq true",
            {"megan.bowen@contoso.com", "alex.wilber@contoso.com", "diego.siciliani@contoso.com"},
        ),
        ("displayName eq 'O''Brien'", set()),
    ],
)
async def test_filter_users(graph, expression, expected):
    result = await graph.users.get(users_query(filter=expression, select=["userPrincipalName"]))
    assert result is not None and result.value is not None
    assert {u.user_principal_name for u in result.value} == expected


@pytest.mark.parametrize(
    ("expression", "code"),
    [
        ("favouriteColour eq 'blue'", "Request_UnsupportedQuery"),
        ("accountEnabled ne true", "Request_UnsupportedQuery"),  # needs ConsistencyLevel: eventual
        ("displayName eq", "BadRequest"),
        ("displayName eq 'x' and", "BadRequest"),
        ("startswith(displayName 'A')", "BadRequest"),
    ],
)
async def test_bad_user_filters_are_400(graph, expression, code):
    with pytest.raises(ODataError) as caught:
        await graph.users.get(users_query(filter=expression))
    assert caught.value.response_status_code == 400
    assert caught.value.error is not None and caught.value.error.code == code


async def test_advanced_query_with_consistency_level_and_count(graph):
    config = users_query(filter="accountEnabled ne true", count=True, select=["userPrincipalName"])
    config.headers.add("ConsistencyLevel", "eventual")
    result = await graph.users.get(config)
    assert result is not None and result.value is not None
    assert [u.user_principal_name for u in result.value] == ["grady.archie@contoso.com"]
    assert result.odata_count == 1


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("endswith(mail,'@fabrikam.com')", {"pradeep.gupta_fabrikam.com#EXT#@contoso.com"}),
        ("not(userType eq 'Member')", {"pradeep.gupta_fabrikam.com#EXT#@contoso.com"}),
    ],
)
async def test_advanced_operators_need_consistency_level(graph, expression, expected):
    with pytest.raises(ODataError) as caught:
        await graph.users.get(users_query(filter=expression))
    assert caught.value.response_status_code == 400
    config = users_query(filter=expression, select=["userPrincipalName"])
    config.headers.add("ConsistencyLevel", "eventual")
    result = await graph.users.get(config)
    assert result is not None and result.value is not None
    assert {u.user_principal_name for u in result.value} == expected


async def test_count_without_consistency_level_is_rejected(graph):
    with pytest.raises(ODataError) as caught:
        await graph.users.get(users_query(count=True))
    assert caught.value.response_status_code == 400


async def test_users_by_upn_with_guest_marker(graph):
    user = await graph.users.by_user_id("pradeep.gupta_fabrikam.com#EXT#@contoso.com").get()
    assert user is not None and user.mail == "pradeep.gupta@fabrikam.com"


async def test_orderby_display_name_descending(graph):
    result = await graph.users.get(users_query(orderby=["displayName desc"], top=2, select=["displayName"]))
    assert result is not None and result.value is not None
    assert [u.display_name for u in result.value] == ["Pradeep Gupta (Fabrikam)", "Patti Fernandez"]


async def test_invalid_page_size_is_rejected(graph):
    with pytest.raises(ODataError) as caught:
        await graph.users.get(users_query(top=1000))
    assert caught.value.response_status_code == 400


async def test_disable_user_is_204_and_changes_the_user(graph, cloud):
    result = await graph.users.by_user_id(ADELE).patch(User(account_enabled=False))
    assert result is None
    patch = [r for r in cloud.writes() if r["method"] == "PATCH"]
    assert patch[-1]["status"] == 204
    assert patch[-1]["body"]["accountEnabled"] is False
    query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(select=["accountEnabled"])
    user = await graph.users.by_user_id("adele.vance@contoso.com").get(RequestConfiguration(query_parameters=query))
    assert user is not None and user.account_enabled is False


async def test_patch_rejects_unknown_and_read_only_properties(graph, cloud):
    with pytest.raises(ODataError) as caught:
        await graph.users.by_user_id(ADELE).patch(User(created_date_time=None, additional_data={"favourite": 1}))
    assert caught.value.response_status_code == 400
    assert caught.value.error is not None and caught.value.error.code == "Request_BadRequest"


async def test_disabling_an_administrator_needs_a_privileged_role(graph, cloud):
    """Riposte's identity has User.EnableDisableAccount.All but no Entra role, so admins stay enabled (as in
    Block-AADUser's note); with Privileged Authentication Administrator it can disable them."""
    with pytest.raises(ODataError) as caught:
        await graph.users.by_user_id(LEE).patch(User(account_enabled=False))
    assert caught.value.response_status_code == 403
    assert caught.value.error is not None and caught.value.error.code == "Authorization_RequestDenied"
    assert cloud.tenant()["graph"]["users"][3]["accountEnabled"] is True

    doc = cloud.tenant()
    doc["tenant"]["riposteIdentity"]["directoryRoles"] = ["Privileged Authentication Administrator"]
    cloud.admin.put("/tenant", json=doc).raise_for_status()
    await graph.users.by_user_id(LEE).patch(User(account_enabled=False))
    lee = next(u for u in cloud.tenant()["graph"]["users"] if u["id"] == LEE)
    assert lee["accountEnabled"] is False


async def test_missing_application_permission_is_403(graph, cloud):
    doc = cloud.tenant()
    doc["tenant"]["riposteIdentity"]["graphPermissions"].remove("User.RevokeSessions.All")
    cloud.admin.put("/tenant", json=doc).raise_for_status()
    with pytest.raises(ODataError) as caught:
        await graph.users.by_user_id(ADELE).revoke_sign_in_sessions.post()
    assert caught.value.response_status_code == 403
    assert caught.value.error is not None and caught.value.error.code == "Authorization_RequestDenied"


async def test_revoke_sign_in_sessions_returns_true_and_stamps_the_user(graph, cloud):
    before = time.time()
    result = await graph.users.by_user_id("adele.vance@contoso.com").revoke_sign_in_sessions.post()
    assert result is not None and result.value is True
    query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(select=["signInSessionsValidFromDateTime"])
    user = await graph.users.by_user_id(ADELE).get(RequestConfiguration(query_parameters=query))
    assert user is not None and user.sign_in_sessions_valid_from_date_time is not None
    assert user.sign_in_sessions_valid_from_date_time.timestamp() >= before - 1
    logged = [r for r in cloud.writes() if r["path"].endswith("/revokeSignInSessions")][-1]
    assert logged["status"] == 200


def test_revoke_response_matches_published_example(cloud):
    from azure.identity import DefaultAzureCredential as SyncCredential

    token = SyncCredential().get_token(*GRAPH_SCOPES).token
    with httpx.Client(base_url=cloud.url, verify=cloud.ca_path) as http:
        response = http.post(f"/v1.0/users/{ADELE}/revokeSignInSessions", headers={"Authorization": f"Bearer {token}"})
    assert response.json() == published("users_revokesigninsessions_response_v1.json")


# ---------------------------------------------------------------------------------------------------- membership


async def test_member_of_lists_groups_and_roles_typed(graph):
    result = await graph.users.by_user_id(LEE).member_of.get()
    assert result is not None and result.value is not None
    roles = [o for o in result.value if isinstance(o, DirectoryRole)]
    groups = [o for o in result.value if isinstance(o, Group)]
    assert [r.display_name for r in roles] == ["Global Administrator"]
    assert roles[0].role_template_id == "62e90394-69f5-4237-9190-012177145e10"
    assert [g.display_name for g in groups] == ["Tier 0 Protected Identities"]


async def test_transitive_member_of_follows_nested_groups(graph, cloud):
    direct = await graph.users.by_user_id(BREAKGLASS).member_of.get()
    transitive = await graph.users.by_user_id("breakglass-01@contoso.com").transitive_member_of.get()
    assert direct is not None and direct.value is not None
    assert transitive is not None and transitive.value is not None
    assert {o.id for o in direct.value} == {BREAK_GLASS_GROUP, GLOBAL_ADMIN_ROLE}
    assert {o.id for o in transitive.value} == {BREAK_GLASS_GROUP, GLOBAL_ADMIN_ROLE, TIER0_GROUP}
    body = raw(cloud, f"/v1.0/users/{BREAKGLASS}/memberOf")
    assert body["@odata.context"] == "https://graph.microsoft.com/v1.0/$metadata#directoryObjects"
    assert {o["@odata.type"] for o in body["value"]} == {"#microsoft.graph.group", "#microsoft.graph.directoryRole"}


async def test_directory_roles_and_their_members(graph):
    roles = await graph.directory_roles.get()
    assert roles is not None and roles.value is not None
    names = {r.display_name: r.id for r in roles.value}
    assert {"Global Administrator", "Security Administrator", "User Administrator"} <= set(names)
    members = await graph.directory_roles.by_directory_role_id(names["Global Administrator"]).members.get()
    assert members is not None and members.value is not None
    assert all(isinstance(m, User) for m in members.value)
    assert {m.user_principal_name for m in members.value} == {"lee.gu@contoso.com", "breakglass-01@contoso.com"}


async def test_group_members(graph):
    members = await graph.groups.by_group_id(TIER0_GROUP).members.get()
    assert members is not None and members.value is not None
    assert {type(m) for m in members.value} == {Group, User}
    transitive = await graph.groups.by_group_id(TIER0_GROUP).transitive_members.get()
    assert transitive is not None and transitive.value is not None
    assert {m.id for m in transitive.value} == {BREAK_GLASS_GROUP, LEE, BREAKGLASS}


# ---------------------------------------------------------------------------------------------------- risky users


def risky_query(**kw: Any) -> RequestConfiguration[Any]:
    return RequestConfiguration(
        query_parameters=RiskyUsersRequestBuilder.RiskyUsersRequestBuilderGetQueryParameters(**kw)
    )


async def test_risky_users_list_matches_the_published_shape(graph, cloud):
    result = await graph.identity_protection.risky_users.get()
    assert result is not None and result.value is not None
    by_upn = {r.user_principal_name: r for r in result.value}
    assert by_upn["adele.vance@contoso.com"].risk_level == RiskLevel.High
    assert by_upn["adele.vance@contoso.com"].risk_state == RiskState.AtRisk
    assert by_upn["alex.wilber@contoso.com"].risk_level == RiskLevel.Medium
    body = raw(cloud, "/v1.0/identityProtection/riskyUsers")
    assert body["@odata.context"] == "https://graph.microsoft.com/v1.0/$metadata#identityProtection/riskyUsers"
    example = published("riskyusers_list_filter_response_tutorial.json")["value"][0]
    for item in body["value"]:
        same_shape(item, example)


# Each filter next to the same condition written in Python over the tenant document, so the demo data may grow.
RISKY_USER_FILTERS: list[tuple[str, Callable[[dict[str, Any]], bool]]] = [
    ("riskLevel eq 'high'", lambda r: r["riskLevel"] == "high"),
    ("riskState eq 'atRisk'", lambda r: r["riskState"] == "atRisk"),
    ("riskState eq 'atRisk' and riskLevel ne 'high'",
     lambda r: r["riskState"] == "atRisk" and r["riskLevel"] != "high"),
    ("riskLevel eq microsoft.graph.riskLevel'medium' or riskState eq 'dismissed'",
     lambda r: r["riskLevel"] == "medium" or r["riskState"] == "dismissed"),
    ("userPrincipalName eq 'ADELE.VANCE@contoso.com'", lambda r: r["id"] == ADELE),
    ("userDisplayName eq 'Alex Wilber'", lambda r: r["id"] == ALEX),
    (f"id eq '{ALEX}'", lambda r: r["id"] == ALEX),
    ("riskLastUpdatedDateTime lt 2000-01-01T00:00:00Z", lambda r: False),
]  # fmt: skip


@pytest.mark.parametrize(("expression", "condition"), RISKY_USER_FILTERS, ids=[f[0] for f in RISKY_USER_FILTERS])
async def test_filter_risky_users(graph, cloud, expression, condition):
    expected = {r["id"] for r in cloud.tenant()["graph"]["riskyUsers"] if condition(r)}
    assert expected or expression.startswith("riskLastUpdatedDateTime"), "the demo tenant should exercise this filter"
    result = await graph.identity_protection.risky_users.get(risky_query(filter=expression))
    assert result is not None and result.value is not None
    assert {r.id for r in result.value} == expected


def test_demo_risky_users_are_as_documented(cloud):
    risky = {r["id"]: r for r in cloud.tenant()["graph"]["riskyUsers"]}
    assert (risky[ADELE]["riskLevel"], risky[ADELE]["riskState"]) == ("high", "atRisk")
    assert (risky[ALEX]["riskLevel"], risky[ALEX]["riskState"]) == ("medium", "atRisk")


async def test_bad_risky_user_filter_is_400(graph):
    with pytest.raises(ODataError) as caught:
        await graph.identity_protection.risky_users.get(risky_query(filter="startswith(riskLevel,'h')"))
    assert caught.value.response_status_code == 400


async def test_risky_users_page_with_top(graph, cloud):
    total = len(cloud.tenant()["graph"]["riskyUsers"])
    first = await graph.identity_protection.risky_users.get(risky_query(top=total - 1))
    assert first is not None and first.value is not None and len(first.value) == total - 1
    assert first.odata_next_link is not None
    rest = await graph.identity_protection.risky_users.with_url(first.odata_next_link).get()
    assert rest is not None and rest.value is not None and len(rest.value) == 1
    assert rest.odata_next_link is None
    assert {r.id for r in first.value + rest.value} == {r["id"] for r in cloud.tenant()["graph"]["riskyUsers"]}


async def test_get_risky_user_by_id(graph):
    risky = await graph.identity_protection.risky_users.by_risky_user_id(ADELE).get()
    assert risky is not None and risky.user_display_name == "Adele Vance"
    with pytest.raises(ODataError) as caught:
        await graph.identity_protection.risky_users.by_risky_user_id(LEE).get()
    assert caught.value.response_status_code == 404


async def test_confirm_compromised_sets_the_documented_state(graph, cloud):
    body = ConfirmCompromisedPostRequestBody(user_ids=[ALEX])
    assert await graph.identity_protection.risky_users.confirm_compromised.post(body) is None
    risky = await graph.identity_protection.risky_users.by_risky_user_id(ALEX).get()
    assert risky is not None
    assert risky.risk_state == RiskState.ConfirmedCompromised
    assert risky.risk_level == RiskLevel.High
    assert risky.risk_detail is not None and risky.risk_detail.value == "adminConfirmedUserCompromised"
    assert risky.risk_last_updated_date_time is not None
    assert abs(risky.risk_last_updated_date_time.timestamp() - time.time()) < 60
    logged = [r for r in cloud.writes() if r["path"].endswith("/confirmCompromised")][-1]
    assert logged["status"] == 204
    assert logged["body"] == {"userIds": [ALEX]}
    same_shape(logged["body"], published("riskyusers_confirmcompromised_request_v1.json"))
    detections = await graph.identity_protection.risk_detections.get(detections_query(filter=f"userId eq '{ALEX}'"))
    assert detections is not None and detections.value is not None
    assert "adminConfirmedUserCompromised" in {d.risk_event_type for d in detections.value}


async def test_confirm_compromised_creates_a_risky_user_for_a_clean_user(graph):
    await graph.identity_protection.risky_users.confirm_compromised.post(
        ConfirmCompromisedPostRequestBody(user_ids=[LEE])
    )
    risky = await graph.identity_protection.risky_users.by_risky_user_id(LEE).get()
    assert risky is not None and risky.risk_state == RiskState.ConfirmedCompromised


async def test_dismiss_sets_the_documented_state_and_closes_detections(graph, cloud):
    assert await graph.identity_protection.risky_users.dismiss.post(DismissPostRequestBody(user_ids=[ADELE])) is None
    risky = await graph.identity_protection.risky_users.by_risky_user_id(ADELE).get()
    assert risky is not None
    assert risky.risk_state == RiskState.Dismissed
    assert risky.risk_level == RiskLevel.None_
    assert risky.risk_detail is not None and risky.risk_detail.value == "adminDismissedAllRiskForUser"
    open_detections = [
        d for d in cloud.tenant()["graph"]["riskDetections"] if d["userId"] == ADELE and d["riskState"] == "atRisk"
    ]
    assert open_detections == []
    same_shape(cloud.writes()[-1]["body"], published("riskyusers_dismiss_request_tutorial.json"))


@pytest.mark.parametrize("user_ids", [["00000000-0000-0000-0000-000000000000"], []])
async def test_risky_user_actions_reject_unknown_or_missing_ids(graph, cloud, user_ids):
    with pytest.raises(ODataError) as caught:
        await graph.identity_protection.risky_users.confirm_compromised.post(
            ConfirmCompromisedPostRequestBody(user_ids=user_ids)
        )
    assert caught.value.response_status_code == 400
    assert caught.value.error is not None and caught.value.error.code == "BadRequest"
    adele = next(r for r in cloud.tenant()["graph"]["riskyUsers"] if r["id"] == ADELE)
    assert adele["riskState"] == "atRisk"


# ---------------------------------------------------------------------------------------------------- risk detections


def detections_query(**kw: Any) -> RequestConfiguration[Any]:
    return RequestConfiguration(
        query_parameters=RiskDetectionsRequestBuilder.RiskDetectionsRequestBuilderGetQueryParameters(**kw)
    )


async def test_risk_detections_for_a_user(graph, cloud):
    result = await graph.identity_protection.risk_detections.get(detections_query(filter=f"userId eq '{ADELE}'"))
    assert result is not None and result.value is not None
    assert {d.risk_event_type for d in result.value} == {"unfamiliarFeatures", "anonymizedIPAddress", "unlikelyTravel"}
    travel = next(d for d in result.value if d.risk_event_type == "unlikelyTravel")
    assert travel.location is not None and travel.location.country_or_region == "RU"
    assert travel.ip_address == "95.173.136.70"
    assert isinstance(travel.additional_info, str)
    info = {i["Key"]: i["Value"] for i in json.loads(travel.additional_info)}
    assert "userAgent" in info
    body = raw(cloud, "/v1.0/identityProtection/riskDetections", **{"$filter": f"userId eq '{ADELE}'"})
    example = published("riskdetections_list_response_v1.json")["value"][0]
    for item in body["value"]:
        same_shape(item, example, ignore={"@odata.type", "location"})
        same_shape(
            item["location"], published("riskdetections_list_filter_response_tutorial.json")["value"][0]["location"]
        )


DETECTION_FILTERS: list[tuple[str, Callable[[dict[str, Any]], bool]]] = [
    ("userPrincipalName eq 'alex.wilber@contoso.com'", lambda d: d["userId"] == ALEX),
    ("riskLevel eq 'high'", lambda d: d["riskLevel"] == "high"),
    ("riskLevel eq 'high' and riskState eq 'atRisk'",
     lambda d: d["riskLevel"] == "high" and d["riskState"] == "atRisk"),
    ("riskEventType eq 'anonymizedIPAddress'", lambda d: d["riskEventType"] == "anonymizedIPAddress"),
    ("location/countryOrRegion eq 'RU'", lambda d: (d["location"] or {}).get("countryOrRegion") == "RU"),
    ("activityDateTime ge 2000-01-01T00:00:00Z", lambda d: True),
    ("activityDateTime ge 2999-01-01T00:00:00.0000000Z", lambda d: False),
]  # fmt: skip


@pytest.mark.parametrize(("expression", "condition"), DETECTION_FILTERS, ids=[f[0] for f in DETECTION_FILTERS])
async def test_filter_risk_detections(graph, cloud, expression, condition):
    expected = {d["id"] for d in cloud.tenant()["graph"]["riskDetections"] if condition(d)}
    result = await graph.identity_protection.risk_detections.get(detections_query(filter=expression))
    assert result is not None and result.value is not None
    assert {d.id for d in result.value} == expected


async def test_recent_detections_by_time_and_order(graph):
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 4 * 3600))
    result = await graph.identity_protection.risk_detections.get(
        detections_query(
            filter=f"userId eq '{ADELE}' and activityDateTime ge {since}", orderby=["activityDateTime desc"], top=2
        )
    )
    assert result is not None and result.value is not None
    assert [d.risk_event_type for d in result.value] == ["unlikelyTravel", "anonymizedIPAddress"]
    assert result.odata_next_link is not None


async def test_get_risk_detection_by_id(graph, cloud):
    detection_id = cloud.tenant()["graph"]["riskDetections"][0]["id"]
    detection = await graph.identity_protection.risk_detections.by_risk_detection_id(detection_id).get()
    assert detection is not None and detection.id == detection_id
    with pytest.raises(ODataError) as caught:
        await graph.identity_protection.risk_detections.by_risk_detection_id("nope").get()
    assert caught.value.response_status_code == 404


# ---------------------------------------------------------------------------------------------------- transport


async def test_base_url_with_trailing_slash_produces_double_slash_that_is_tolerated(cloud, credential):
    client = graph_client(cloud, credential, base_url=f"{cloud.url}/v1.0/")
    user = await client.users.by_user_id(LEE).get()
    assert user is not None and user.display_name == "Lee Gu"
    assert cloud.requests(service="graph")[-1]["path"] == f"/v1.0/users/{LEE}"


async def test_429_with_retry_after_is_absorbed_by_the_retry_handler(graph, cloud):
    cloud.admin.post("/faults", json={"match": "GET /v1.0/users/*", "status": 429, "retryAfter": 1, "count": 1})
    started = time.monotonic()
    user = await graph.users.by_user_id(LEE).get()
    elapsed = time.monotonic() - started
    assert user is not None and user.display_name == "Lee Gu"
    assert [r["status"] for r in cloud.requests(service="graph")] == [429, 200]
    assert 0.9 < elapsed < 3


async def test_429_without_retry_after_is_retried_with_backoff(graph, cloud):
    """Identity Protection style: no Retry-After, the SDK falls back to exponential backoff with jitter."""
    cloud.admin.post(
        "/faults", json={"match": "GET /v1.0/identityProtection/*", "status": 429, "retryAfter": None, "count": 1}
    )
    started = time.monotonic()
    risky = await graph.identity_protection.risky_users.by_risky_user_id(ADELE).get(retries(1))
    assert risky is not None
    assert [r["status"] for r in cloud.requests(service="graph")] == [429, 200]
    assert time.monotonic() - started < 3


async def test_429_beyond_max_retries_surfaces_as_odata_error(graph, cloud):
    cloud.admin.post("/faults", json={"match": "GET /v1.0/users/*", "status": 429, "retryAfter": 1})
    with pytest.raises(ODataError) as caught:
        await graph.users.by_user_id(LEE).get(retries(1))
    assert caught.value.response_status_code == 429
    assert caught.value.error is not None and caught.value.error.code == "TooManyRequests"
    assert [r["status"] for r in cloud.requests(service="graph")] == [429, 429]


def test_unknown_segment_is_graphs_400(cloud):
    body: dict[str, Any]
    from azure.identity import DefaultAzureCredential as SyncCredential

    token = SyncCredential().get_token(*GRAPH_SCOPES).token
    with httpx.Client(base_url=cloud.url, verify=cloud.ca_path) as http:
        response = http.get("/v1.0/usrs", headers={"Authorization": f"Bearer {token}"})
    body = response.json()
    assert response.status_code == 400
    assert body["error"]["code"] == "BadRequest"
    assert body["error"]["message"] == "Resource not found for the segment 'usrs'."


def test_published_fixture_directory_exists() -> None:
    assert Path(PUBLISHED / "graph" / "users_get_response_v1.json").is_file()
