"""Microsoft Graph v1.0 through the official async msgraph-sdk: users, memberships and Identity Protection.

Domain methods take object ids and return plain dicts in Graph's JSON shape (camelCase; properties Graph sent as null
are left out), and raise shared.azure.errors.AzureError. The SDK is imported only when the first call builds the
client, so importing this module stays cheap.

The HTTP pipeline is the SDK's own (redirects, retries, telemetry) with two choices of ours:
- kiota's RetryHandler retries 429/503/504 up to settings.max_retries, sleeping exactly Retry-After when the service
  sends one and an exponential backoff with jitter (plus settings.retry_backoff_seconds) when it does not, which is
  how Identity Protection answers;
- a middleware placed after the RetryHandler acquires limits.identity_protection for every request to
  /identityProtection/, so each attempt, retries included, stays within the tenant-wide 1 request/s, and reports
  each 429 to it (limits.py: the pause is shared by every instance when the limiter is)."""

from __future__ import annotations

import json
import ssl
import uuid
from collections.abc import Awaitable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from shared.azure.errors import NotFound, from_sdk
from shared.azure.limits import Admission, Limits, retry_after_seconds
from shared.settings import Settings

if TYPE_CHECKING:
    import httpx
    from kiota_abstractions.request_information import RequestInformation
    from kiota_http.middleware.middleware import BaseMiddleware
    from msgraph.graph_service_client import GraphServiceClient

SERVICE = "graph"
GRAPH_SCOPES = ["https://graph.microsoft.com/.default"]
IDENTITY_PROTECTION_PATH = "/identityprotection/"

# What entra.get_user and the responders' plans need, and nothing more ($select also lowers the request's cost).
USER_FIELDS = (
    "id",
    "userPrincipalName",
    "displayName",
    "accountEnabled",
    "mail",
    "jobTitle",
    "department",
    "userType",
    "createdDateTime",
    "onPremisesSyncEnabled",
    "signInSessionsValidFromDateTime",
)
MEMBERSHIP_PAGE_SIZE = 999  # Graph's largest page for directoryObject collections: fewest round trips
RISK_DETECTION_PAGE_SIZE = 500  # the largest $top riskDetections accepts (its default page is 20)
KIOTA_MAX_RETRIES = 10  # RetryHandlerOption refuses more
SIGNIN_PAGE_SIZE = 500  # the sign-in log's page (at most 1,000)

T = TypeVar("T")


def object_id(value: str) -> str:
    """A directory object id in canonical form; anything else is refused before it reaches a URL or a $filter."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise ValueError(f"not an object id (GUID): {value!r}") from None


def odata_time(moment: datetime) -> str:
    """A DateTimeOffset literal for $filter (unquoted, UTC)."""
    if moment.tzinfo is None:
        raise ValueError("a $filter time must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def without_nulls(value: Any) -> Any:
    """A JSON value with every property that is null left out, at any depth."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def entity(document: dict[str, Any]) -> dict[str, Any]:
    """A response body as our domain methods return it: Graph's JSON, nulls and response metadata left out."""
    document.pop("@odata.context", None)
    cleaned: dict[str, Any] = without_nulls(document)
    return cleaned


def identity_protection_limiter(limiter: Admission) -> BaseMiddleware:
    """Middleware that admits every request to /identityProtection/ through the limiter, and tells it of each 429 so
    no instance sends again before Retry-After (defined here to import lazily)."""
    from kiota_http.middleware.middleware import BaseMiddleware

    class IdentityProtectionLimiter(BaseMiddleware):
        async def send(self, request: httpx.Request, transport: httpx.AsyncBaseTransport) -> httpx.Response:
            limited = IDENTITY_PROTECTION_PATH in request.url.path.lower()
            if limited:
                await limiter.acquire()
            response: httpx.Response = await super().send(request, transport)
            if limited and response.status_code == 429:
                await limiter.throttled(retry_after_seconds(response.headers.get("retry-after")))
            return response

    return IdentityProtectionLimiter()


class GraphAdapter:
    def __init__(self, settings: Settings, credential: Any, limits: Limits) -> None:
        self.settings = settings
        self.credential = credential
        self.limits = limits
        self._client: GraphServiceClient | None = None
        self._http: httpx.AsyncClient | None = None

    # ------------------------------------------------------------------------------------------ the client
    @property
    def base_url(self) -> str:
        # No trailing slash: httpx would turn ".../v1.0/" into ".../v1.0//users" (docs/reference/sdk-behaviours.md).
        return self.settings.graph_endpoint.rstrip("/") + "/v1.0"

    @property
    def client(self) -> GraphServiceClient:
        if self._client is None:
            self._client = self._build()
        return self._client

    def _build(self) -> GraphServiceClient:
        import httpx
        from kiota_authentication_azure.azure_identity_authentication_provider import (
            AzureIdentityAuthenticationProvider,
        )
        from kiota_http.kiota_client_factory import KiotaClientFactory
        from kiota_http.middleware.options import RetryHandlerOption
        from msgraph.graph_request_adapter import GraphRequestAdapter
        from msgraph.graph_request_adapter import options as sdk_options
        from msgraph.graph_service_client import GraphServiceClient
        from msgraph_core import GraphClientFactory
        from msgraph_core.middleware import GraphTelemetryHandler
        from msgraph_core.middleware.options import GraphTelemetryHandlerOption

        verify: ssl.SSLContext | bool = True
        if self.settings.ca_bundle:
            verify = ssl.create_default_context(cafile=self.settings.ca_bundle)
        http = httpx.AsyncClient(verify=verify, timeout=httpx.Timeout(100.0, connect=30.0))
        retry = RetryHandlerOption(
            delay=self.settings.retry_backoff_seconds,
            max_retries=min(self.settings.max_retries, KIOTA_MAX_RETRIES),
            should_retry=self.settings.max_retries > 0,
        )
        options = {**sdk_options, RetryHandlerOption.get_key(): retry}
        # The SDK's default pipeline (the RetryHandler among it), then the limiter, closest to the wire.
        middleware = KiotaClientFactory.get_default_middleware(options)
        telemetry = options.get(GraphTelemetryHandlerOption.get_key())
        assert isinstance(telemetry, GraphTelemetryHandlerOption)
        middleware.append(GraphTelemetryHandler(options=telemetry))
        middleware.append(identity_protection_limiter(self.limits.identity_protection))
        self._http = GraphClientFactory.create_with_custom_middleware(middleware, client=http)

        host = urlsplit(self.settings.graph_endpoint).hostname or "graph.microsoft.com"
        # Scopes explicitly: without them the scope would be derived from a local endpoint's host. allowed_hosts keeps
        # the token from being sent anywhere else (a nextLink to another host gets no Authorization header).
        auth = AzureIdentityAuthenticationProvider(self.credential, scopes=GRAPH_SCOPES, allowed_hosts=[host])
        adapter = GraphRequestAdapter(auth, client=self._http)
        adapter.base_url = self.base_url
        return GraphServiceClient(request_adapter=adapter)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        self._http = None
        self._client = None

    @staticmethod
    async def _call(operation: Awaitable[T]) -> T:
        try:
            return await operation
        except Exception as error:
            raise from_sdk(SERVICE, error) from error

    async def _read(self, request: RequestInformation) -> dict[str, Any] | None:
        """GET through the SDK's pipeline, the body read as JSON: no kiota models built and serialised back (the
        largest CPU cost of a run). Errors map as the request builders' own do ({"XXX": ODataError}). None when
        Graph answers without a body."""
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError

        adapter: Any = self.client.request_adapter  # its stub types send_primitive_async as returning nothing
        body: bytes | None = await self._call(adapter.send_primitive_async(request, "bytes", {"XXX": ODataError}))
        if not body:
            return None
        document: dict[str, Any] = json.loads(body)
        return document

    async def _pages(self, first: RequestInformation, builder: Any, max_pages: int | None = None) -> list[Any]:
        """The items of a collection, following @odata.nextLink (at most max_pages pages when given)."""
        page = await self._read(first)
        found: list[Any] = []
        pages = 1
        while page is not None:
            found += [entity(item) for item in page.get("value") or [] if isinstance(item, dict)]
            link = page.get("@odata.nextLink")
            if not link or (max_pages is not None and pages >= max_pages):
                break
            page = await self._read(builder.with_url(link).to_get_request_information())
            pages += 1
        return found

    # ------------------------------------------------------------------------------------------ users
    async def get_user(self, user_id: str) -> dict[str, Any]:
        """GET /users/{id}?$select=USER_FIELDS. NotFound when there is no such user."""
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder

        query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(select=list(USER_FIELDS))
        builder = self.client.users.by_user_id(object_id(user_id))
        user = await self._read(builder.to_get_request_information(RequestConfiguration(query_parameters=query)))
        if user is None:
            raise NotFound(SERVICE, 404, "Request_ResourceNotFound", f"user {user_id} not found")
        return entity(user)

    async def list_memberships(self, user_id: str) -> list[dict[str, Any]]:
        """GET /users/{id}/transitiveMemberOf, every page: the groups (nested ones included) and the directory roles
        the user holds, each a directoryObject with its @odata.type."""
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.users.item.transitive_member_of.transitive_member_of_request_builder import (
            TransitiveMemberOfRequestBuilder,
        )

        builder = self.client.users.by_user_id(object_id(user_id)).transitive_member_of
        query = TransitiveMemberOfRequestBuilder.TransitiveMemberOfRequestBuilderGetQueryParameters(
            top=MEMBERSHIP_PAGE_SIZE
        )
        found: list[dict[str, Any]] = await self._pages(
            builder.to_get_request_information(RequestConfiguration(query_parameters=query)), builder
        )
        return found

    async def transitive_group_ids(self, user_id: str) -> set[str]:
        """The ids (lower case) of every group a user belongs to, nested membership included (transitiveMemberOf,
        groups only). An object that is not a user of the tenant belongs to none."""
        try:
            memberships = await self.list_memberships(user_id)
        except (NotFound, ValueError):  # ValueError: not an object id, so no user of the tenant
            return set()
        return {str(m["id"]).lower() for m in memberships if m.get("@odata.type") == "#microsoft.graph.group"}

    async def set_account_enabled(self, user_id: str, enabled: bool) -> dict[str, Any]:
        """PATCH /users/{id} {"accountEnabled": enabled}; Graph answers 204. Setting the value it has is harmless."""
        from msgraph.generated.models.user import User

        await self._call(self.client.users.by_user_id(object_id(user_id)).patch(User(account_enabled=enabled)))
        return {"id": user_id, "accountEnabled": enabled}

    async def revoke_sessions(self, user_id: str) -> dict[str, Any]:
        """POST /users/{id}/revokeSignInSessions: refresh tokens and session cookies issued before now stop working."""
        builder = self.client.users.by_user_id(object_id(user_id)).revoke_sign_in_sessions
        response = await self._call(builder.post())
        return {"value": bool(response.value) if response is not None else False}

    # ------------------------------------------------------------------------------------------ Identity Protection
    async def get_risky_user(self, user_id: str) -> dict[str, Any] | None:
        """GET /identityProtection/riskyUsers/{id}; None when Identity Protection has no record of the user."""
        builder = self.client.identity_protection.risky_users.by_risky_user_id(object_id(user_id))
        try:
            risky = await self._read(builder.to_get_request_information())
        except NotFound:
            return None
        return entity(risky) if risky is not None else None

    async def list_risk_detections(self, user_id: str, since: datetime, max_pages: int = 4) -> list[dict[str, Any]]:
        """GET /identityProtection/riskDetections for one user, detected at or after `since`, newest first.

        riskDetections has no $orderby, so a page is not "the newest N": every page of the window is read (at most
        `max_pages` of 500, each one Identity Protection request) and sorted here."""
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.identity_protection.risk_detections.risk_detections_request_builder import (
            RiskDetectionsRequestBuilder,
        )

        builder = self.client.identity_protection.risk_detections
        # The id is a canonical GUID (object_id) and the time a formatted literal: nothing else reaches the filter.
        query = RiskDetectionsRequestBuilder.RiskDetectionsRequestBuilderGetQueryParameters(
            filter=f"userId eq '{object_id(user_id)}' and detectedDateTime ge {odata_time(since)}",
            top=RISK_DETECTION_PAGE_SIZE,
        )
        request = builder.to_get_request_information(RequestConfiguration(query_parameters=query))
        found: list[dict[str, Any]] = await self._pages(request, builder, max_pages)
        # ISO-8601 UTC strings of one format sort in time order.
        found.sort(key=lambda d: str(d.get("detectedDateTime") or d.get("activityDateTime") or ""), reverse=True)
        return found

    async def confirm_compromised(self, user_ids: Iterable[str]) -> dict[str, Any]:
        """POST /identityProtection/riskyUsers/confirmCompromised: risk high, state confirmedCompromised (204)."""
        from msgraph.generated.identity_protection.risky_users.confirm_compromised.confirm_compromised_post_request_body import (  # noqa: E501
            ConfirmCompromisedPostRequestBody,
        )

        ids = [object_id(u) for u in user_ids]
        body = ConfirmCompromisedPostRequestBody(user_ids=ids)
        await self._call(self.client.identity_protection.risky_users.confirm_compromised.post(body))
        return {"userIds": ids}

    async def dismiss_risk(self, user_ids: Iterable[str]) -> dict[str, Any]:
        """POST /identityProtection/riskyUsers/dismiss: risk none, state dismissed (204)."""
        from msgraph.generated.identity_protection.risky_users.dismiss.dismiss_post_request_body import (
            DismissPostRequestBody,
        )

        ids = [object_id(u) for u in user_ids]
        await self._call(self.client.identity_protection.risky_users.dismiss.post(DismissPostRequestBody(user_ids=ids)))
        return {"userIds": ids}

    # ------------------------------------------------------------------------------------------ sign-in logs
    async def list_signins(self, user_id: str, since: datetime, max_pages: int = 2) -> list[dict[str, Any]]:
        """GET /auditLogs/signIns for one user since `since` (interactive sign-ins, with their risk fields when the
        tenant has Entra ID P2), newest first: at most `max_pages` pages of SIGNIN_PAGE_SIZE."""
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.audit_logs.sign_ins.sign_ins_request_builder import SignInsRequestBuilder

        builder = self.client.audit_logs.sign_ins
        # A canonical GUID and a formatted time: nothing else reaches the filter.
        query = SignInsRequestBuilder.SignInsRequestBuilderGetQueryParameters(
            filter=f"userId eq '{object_id(user_id)}' and createdDateTime ge {odata_time(since)}",
            top=SIGNIN_PAGE_SIZE,
        )
        request = builder.to_get_request_information(RequestConfiguration(query_parameters=query))
        found: list[dict[str, Any]] = await self._pages(request, builder, max_pages)
        found.sort(key=lambda s: str(s.get("createdDateTime") or ""), reverse=True)
        return found

    # ------------------------------------------------------------------------------------------ passwords and groups
    async def require_password_change(self, user_id: str) -> dict[str, Any]:
        """PATCH /users/{id} {"passwordProfile": {"forceChangePasswordNextSignIn": true}}: no password is sent, set or
        returned; the user chooses a new one at their next sign-in."""
        from msgraph.generated.models.password_profile import PasswordProfile
        from msgraph.generated.models.user import User

        profile = PasswordProfile(force_change_password_next_sign_in=True)
        await self._call(self.client.users.by_user_id(object_id(user_id)).patch(User(password_profile=profile)))
        return {"id": user_id, "forceChangePasswordNextSignIn": True}

    async def direct_groups(self, user_id: str) -> list[dict[str, Any]]:
        """GET /users/{id}/memberOf, every page, groups only: the groups the user is a direct member of."""
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.users.item.member_of.member_of_request_builder import MemberOfRequestBuilder

        builder = self.client.users.by_user_id(object_id(user_id)).member_of
        query = MemberOfRequestBuilder.MemberOfRequestBuilderGetQueryParameters(top=MEMBERSHIP_PAGE_SIZE)
        found = await self._pages(
            builder.to_get_request_information(RequestConfiguration(query_parameters=query)), builder
        )
        return [g for g in found if g.get("@odata.type") == "#microsoft.graph.group"]

    async def get_group(self, group_id: str) -> dict[str, Any]:
        """GET /groups/{id} with what decides whether its members can be written (dynamic, role-assignable)."""
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.groups.item.group_item_request_builder import GroupItemRequestBuilder

        fields = ["id", "displayName", "groupTypes", "membershipRule", "isAssignableToRole", "securityEnabled"]
        query = GroupItemRequestBuilder.GroupItemRequestBuilderGetQueryParameters(select=fields)
        builder = self.client.groups.by_group_id(object_id(group_id))
        group = await self._read(builder.to_get_request_information(RequestConfiguration(query_parameters=query)))
        if group is None:
            raise NotFound(SERVICE, 404, "Request_ResourceNotFound", f"group {group_id} not found")
        return entity(group)

    async def remove_group_member(self, group_id: str, member_id: str) -> None:
        """DELETE /groups/{id}/members/{member}/$ref (204); 404 when the object is not a direct member."""
        members = self.client.groups.by_group_id(object_id(group_id)).members
        await self._call(members.by_directory_object_id(object_id(member_id)).ref.delete())

    async def add_group_member(self, group_id: str, member_id: str) -> None:
        """POST /groups/{id}/members/$ref {"@odata.id": ".../directoryObjects/{member}"} (204); 400 when already in."""
        from msgraph.generated.models.reference_create import ReferenceCreate

        reference = ReferenceCreate(odata_id=f"{self.base_url}/directoryObjects/{object_id(member_id)}")
        await self._call(self.client.groups.by_group_id(object_id(group_id)).members.ref.post(reference))

    # ------------------------------------------------------------------------------------------ service principals
    async def get_service_principal(self, sp_id: str) -> dict[str, Any]:
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.service_principals.item.service_principal_item_request_builder import (
            ServicePrincipalItemRequestBuilder,
        )

        fields = ["id", "appId", "displayName", "accountEnabled", "servicePrincipalType", "appOwnerOrganizationId"]
        query = ServicePrincipalItemRequestBuilder.ServicePrincipalItemRequestBuilderGetQueryParameters(select=fields)
        builder = self.client.service_principals.by_service_principal_id(object_id(sp_id))
        found = await self._read(builder.to_get_request_information(RequestConfiguration(query_parameters=query)))
        if found is None:
            raise NotFound(SERVICE, 404, "Request_ResourceNotFound", f"service principal {sp_id} not found")
        return entity(found)

    async def set_service_principal_enabled(self, sp_id: str, enabled: bool) -> dict[str, Any]:
        """PATCH /servicePrincipals/{id} {"accountEnabled": enabled}: a disabled one gets no new tokens."""
        from msgraph.generated.models.service_principal import ServicePrincipal

        builder = self.client.service_principals.by_service_principal_id(object_id(sp_id))
        await self._call(builder.patch(ServicePrincipal(account_enabled=enabled)))
        return {"id": sp_id, "accountEnabled": enabled}

    async def get_risky_service_principal(self, principal_id: str) -> dict[str, Any] | None:
        """GET /identityProtection/riskyServicePrincipals/{id}; None when Identity Protection has no record of it."""
        builder = self.client.identity_protection.risky_service_principals.by_risky_service_principal_id(
            object_id(principal_id)
        )
        try:
            risky = await self._read(builder.to_get_request_information())
        except NotFound:
            return None
        return entity(risky) if risky is not None else None

    async def confirm_service_principals_compromised(self, sp_ids: Iterable[str]) -> dict[str, Any]:
        """POST /identityProtection/riskyServicePrincipals/confirmCompromised (204): risk high, confirmed."""
        from msgraph.generated.identity_protection.risky_service_principals.confirm_compromised.confirm_compromised_post_request_body import (  # noqa: E501
            ConfirmCompromisedPostRequestBody,
        )

        ids = [object_id(i) for i in sp_ids]
        builder = self.client.identity_protection.risky_service_principals.confirm_compromised
        await self._call(builder.post(ConfirmCompromisedPostRequestBody(service_principal_ids=ids)))
        return {"servicePrincipalIds": ids}

    # ------------------------------------------------------------------------------------------ named locations
    async def get_named_location(self, location_id: str) -> dict[str, Any]:
        builder = self.client.identity.conditional_access.named_locations.by_named_location_id(object_id(location_id))
        found = await self._read(builder.to_get_request_information())
        if found is None:
            raise NotFound(SERVICE, 404, "Request_ResourceNotFound", f"named location {location_id} not found")
        return entity(found)

    async def set_named_location_ranges(self, location_id: str, cidrs: list[str]) -> None:
        """PATCH an IP named location with its whole ipRanges list (Graph replaces the list, it cannot add one)."""
        import ipaddress

        from msgraph.generated.models.i_pv4_cidr_range import IPv4CidrRange
        from msgraph.generated.models.i_pv6_cidr_range import IPv6CidrRange
        from msgraph.generated.models.ip_named_location import IpNamedLocation

        ranges: list[Any] = [
            IPv4CidrRange(cidr_address=c) if ipaddress.ip_network(c).version == 4 else IPv6CidrRange(cidr_address=c)
            for c in cidrs
        ]
        body = IpNamedLocation(odata_type="#microsoft.graph.ipNamedLocation", ip_ranges=ranges)
        builder = self.client.identity.conditional_access.named_locations.by_named_location_id(object_id(location_id))
        await self._call(builder.patch(body))


ADAPTER = GraphAdapter
