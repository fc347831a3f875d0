"""ARM core: resource ids, the resource store, ETags, long-running operations, and the subscription-level resources
(subscriptions, resource groups, Log Analytics workspaces, storage accounts, generic resource listing).

Every ARM resource provider (arm_compute, arm_network, arm_sentinel, arm_authorization and ResourcesProvider here)
is an ArmProvider, whose helpers raise ArmError. Conventions they share:
* ids and path segments are case-insensitive: resources are indexed by their case-folded id and answered with the
  casing they were stored with;
* Network writes and Compute actions are long-running operations (`Operation`): the first answer carries
  Azure-AsyncOperation (plus Location for DELETE/POST) and Retry-After, the status URL answers InProgress until the
  operation is done. An operation stays in progress for at least `operationSeconds` and until somebody polls it (or
  reads the resource), so the "lock" window of the real providers exists; nobody polling it ends it after
  `abandonedOperationSeconds` anyway;
* every ARM route requires an api-version query parameter but accepts any value (the pinned SDKs differ).
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from local.cloud.errors import AdminError, ArmError
from local.cloud.provider import Provider, route
from local.cloud.router import request_params
from local.cloud.state import Cloud

Json = dict[str, Any]

WORKSPACE_TYPE = "Microsoft.OperationalInsights/workspaces"
STORAGE_TYPE = "Microsoft.Storage/storageAccounts"

# Keys a stored resource may carry for the emulator's own bookkeeping; never part of an ARM answer.
INTERNAL_KEYS = frozenset({"queryStatus"})


# --------------------------------------------------------------------------------------------------------------------
# ids


def key(resource_id: str) -> str:
    """The case-folded form every ARM id is indexed under."""
    return resource_id.rstrip("/").lower()


def same_id(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and key(a) == key(b)


def group_id(subscription: str, group: str) -> str:
    return f"/subscriptions/{subscription}/resourceGroups/{group}"


def resource_id(subscription: str, group: str, resource_type: str, name: str, *children: str) -> str:
    """resource_id(sub, rg, "Microsoft.Network/networkSecurityGroups", "nsg", "securityRules", "r1")."""
    namespace, _, type_name = resource_type.partition("/")
    path = f"{group_id(subscription, group)}/providers/{namespace}/{type_name}/{name}"
    for segment in children:
        path += f"/{segment}"
    return path


@dataclass(frozen=True)
class ArmId:
    """A parsed resource id: /subscriptions/s/resourceGroups/g/providers/Ns/type/name[/childType/childName...]."""

    subscription: str
    resource_group: str
    namespace: str
    types: tuple[str, ...]
    names: tuple[str, ...]

    @classmethod
    def parse(cls, value: str | None) -> ArmId | None:
        if not value:
            return None
        parts = value.strip("/").split("/")
        if len(parts) < 8 or parts[0].lower() != "subscriptions" or parts[2].lower() != "resourcegroups":
            return None
        if parts[4].lower() != "providers" or len(parts[6:]) % 2:
            return None
        rest = parts[6:]
        return cls(parts[1], parts[3], parts[5], tuple(rest[0::2]), tuple(rest[1::2]))

    @property
    def resource_type(self) -> str:
        return "/".join((self.namespace, *self.types))

    @property
    def name(self) -> str:
        return self.names[-1]


# --------------------------------------------------------------------------------------------------------------------
# time and etags


def utc_now() -> str:
    """ARM timestamps carry 7 fractional digits."""
    return iso(time.time())


def iso(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0Z"


def parse_time(value: str | None) -> float | None:
    """Epoch seconds of an ISO-8601 UTC timestamp (any number of fractional digits), None if unparseable."""
    if not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    main, dot, rest = text.partition(".")
    if dot:  # Python accepts at most 6 fractional digits
        digits = "".join(ch for ch in rest if ch.isdigit())
        zone = rest[len(digits) :]
        text = f"{main}.{digits[:6]}{zone}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def weak_etag() -> str:
    """Microsoft.Network's etags: W/"guid"."""
    return f'W/"{uuid.uuid4()}"'


def quoted_etag() -> str:
    """Microsoft.SecurityInsights' etags: a quoted guid."""
    return f'"{uuid.uuid4()}"'


def check_preconditions(request: Request, current_etag: str | None) -> None:
    """If-Match / If-None-Match as ARM resource providers honour them: 412 when the request may not proceed."""
    failed = ArmError(
        412,
        "PreconditionFailed",
        "The condition specified using HTTP conditional header(s) is not met.",
    )
    if_match = request.headers.get("if-match")
    if if_match is not None:
        wanted = [tag.strip() for tag in if_match.split(",")]
        if current_etag is None or ("*" not in wanted and current_etag not in wanted):
            raise failed
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None and current_etag is not None:
        wanted = [tag.strip() for tag in if_none_match.split(",")]
        if "*" in wanted or current_etag in wanted:
            raise failed


# --------------------------------------------------------------------------------------------------------------------
# settings


@dataclass
class ArmSettings:
    """Timing knobs, from the tenant's `arm.settings` and overridable at run time via /_admin/arm/settings."""

    operation_seconds: float = 0.0  # least time a long-running operation stays InProgress
    # Retry-After on operation and 429 answers: whole seconds, as HTTP (and the SDKs' int parsing) want it. 0 makes
    # the SDK poll at its polling_interval instead (its default is 30 s, so the product should honour this header).
    retry_after_seconds: int = 1
    abandoned_operation_seconds: float = 5.0  # an operation nobody polls still ends this long after it started

    FIELDS: ClassVar[dict[str, str]] = {
        "operationSeconds": "operation_seconds",
        "retryAfterSeconds": "retry_after_seconds",
        "abandonedOperationSeconds": "abandoned_operation_seconds",
    }

    def update(self, values: dict[str, Any]) -> list[str]:
        """Applies camelCase values; returns the names it did not understand."""
        unknown = []
        for name, value in values.items():
            attribute = self.FIELDS.get(name)
            if attribute is None or isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                unknown.append(name)
            elif attribute == "retry_after_seconds":
                if value != int(value):
                    unknown.append(name)
                else:
                    self.retry_after_seconds = int(value)
            else:
                setattr(self, attribute, float(value))
        return unknown

    def as_json(self) -> Json:
        return {name: getattr(self, attribute) for name, attribute in self.FIELDS.items()}

    def retry_after_header(self) -> str:
        return str(self.retry_after_seconds)


def settings(cloud: Cloud) -> ArmSettings:
    current = cloud.runtime.get("arm_settings")
    if current is None:
        current = ArmSettings()
        current.update(dict((cloud.doc.get("arm") or {}).get("settings") or {}))
        cloud.runtime["arm_settings"] = current
    assert isinstance(current, ArmSettings)
    return current


# --------------------------------------------------------------------------------------------------------------------
# the resource store (a case-insensitive index over the live tenant document)


class ArmStore:
    """The `arm:` section of the live document, indexed by case-folded id. Resources are the very dicts in the
    document, so a change here is what GET /_admin/tenant shows."""

    def __init__(self, doc: Json) -> None:
        arm = doc.setdefault("arm", {})
        self.subscriptions: list[Json] = arm.setdefault("subscriptions", [])
        self.groups: list[Json] = arm.setdefault("resourceGroups", [])
        self.resources: list[Json] = arm.setdefault("resources", [])
        self.index: dict[str, Json] = {key(r["id"]): r for r in self.resources if r.get("id")}

    def get(self, resource_id: str | None, resource_type: str | None = None) -> Json | None:
        if not resource_id:
            return None
        found = self.index.get(key(resource_id))
        if (
            found is not None
            and resource_type is not None
            and str(found.get("type", "")).lower() != resource_type.lower()
        ):
            return None
        return found

    def put(self, resource: Json) -> None:
        existing = self.index.get(key(resource["id"]))
        if existing is not None and existing is not resource:
            self.resources[self.resources.index(existing)] = resource
        elif existing is None:
            self.resources.append(resource)
        self.index[key(resource["id"])] = resource

    def delete(self, resource_id: str) -> Json | None:
        found = self.index.pop(key(resource_id), None)
        if found is not None:
            self.resources.remove(found)
        return found

    def of_type(
        self,
        resource_type: str,
        subscription: str | None = None,
        group: str | None = None,
    ) -> list[Json]:
        prefix = (
            group_id(subscription, group) + "/" if subscription and group else f"/subscriptions/{subscription}/"
        ).lower()
        wanted = resource_type.lower()
        return [
            r
            for r in self.resources
            if str(r.get("type", "")).lower() == wanted and (subscription is None or key(r["id"]).startswith(prefix))
        ]

    def in_scope(self, subscription: str, group: str | None = None) -> list[Json]:
        prefix = (group_id(subscription, group) + "/" if group else f"/subscriptions/{subscription}/").lower()
        return [r for r in self.resources if key(r["id"]).startswith(prefix)]

    def subscription(self, subscription_id: str) -> Json | None:
        return next(
            (s for s in self.subscriptions if str(s.get("subscriptionId", "")).lower() == subscription_id.lower()),
            None,
        )

    def group(self, subscription_id: str, name: str) -> Json | None:
        return next(
            (
                g
                for g in self.groups
                if str(g.get("subscriptionId", "")).lower() == subscription_id.lower()
                and str(g.get("name", "")).lower() == name.lower()
            ),
            None,
        )


def store(cloud: Cloud) -> ArmStore:
    current = cloud.runtime.get("arm_store")
    if current is None:
        current = ArmStore(cloud.doc)
        cloud.runtime["arm_store"] = current
    assert isinstance(current, ArmStore)
    return current


def render(resource: Json) -> Json:
    """The ARM answer for a stored resource: a copy without the emulator's bookkeeping."""
    return {k: copy.deepcopy(v) for k, v in resource.items() if k not in INTERNAL_KEYS}


# --------------------------------------------------------------------------------------------------------------------
# errors in ARM's words


def subscription_not_found(subscription: str) -> ArmError:
    return ArmError(
        404,
        "SubscriptionNotFound",
        f"The subscription '{subscription}' could not be found.",
    )


def group_not_found(group: str) -> ArmError:
    return ArmError(404, "ResourceGroupNotFound", f"Resource group '{group}' could not be found.")


def resource_not_found(resource_type: str, name: str, group: str) -> ArmError:
    return ArmError(
        404,
        "ResourceNotFound",
        f"The Resource '{resource_type}/{name}' under resource group '{group}' was not found. "
        "For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )


def child_not_found(resource_id: str) -> ArmError:
    """How Microsoft.Network answers for a missing child resource (a rule, a packet capture)."""
    return ArmError(404, "NotFound", f"Resource {resource_id} not found.")


def invalid_request_content(reason: str) -> ArmError:
    return ArmError(
        400,
        "InvalidRequestContent",
        f"The request content was invalid and could not be deserialized: {reason}",
    )


def require_scope(cloud: Cloud, subscription: str, group: str | None = None) -> None:
    """404 for a missing subscription or resource group, like ARM answers before the provider sees the call."""
    arm = store(cloud)
    if arm.subscription(subscription) is None:
        raise subscription_not_found(subscription)
    if group is not None and arm.group(subscription, group) is None:
        raise group_not_found(group)


def find(cloud: Cloud, subscription: str, group: str, resource_type: str, name: str) -> Json:
    """The resource, or the 404 ARM would give."""
    require_scope(cloud, subscription, group)
    found = store(cloud).get(resource_id(subscription, group, resource_type, name), resource_type)
    if found is None:
        raise resource_not_found(resource_type, name, group)
    return found


async def read_json(request: Request) -> Json:
    """The request's JSON object body, or ARM's 400."""
    raw = await request.body()
    if not raw:
        raise invalid_request_content("the request body is empty.")
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise invalid_request_content(str(exc)) from exc
    if not isinstance(body, dict):
        raise invalid_request_content("a JSON object is expected.")
    return body


def listing(items: Iterable[Json]) -> Response:
    return JSONResponse({"value": [render(item) for item in items]})


# --------------------------------------------------------------------------------------------------------------------
# long-running operations


@dataclass
class Operation:
    id: str
    name: str  # the provider's operation name, e.g. PutNetworkSecurityGroupOperation (shown in 429 messages)
    namespace: str  # Microsoft.Network, Microsoft.Compute
    subscription: str
    location: str
    target: str  # case-folded id of the resource the operation locks
    started: float
    min_seconds: float
    abandon_after: float
    finish: Callable[[], None] | None = None
    result_status: int = 200  # what the Location URL answers once done
    result_body: Any = None
    status: str = "InProgress"
    ended: float | None = None
    polled: bool = False

    def due(self, now: float) -> bool:
        elapsed = now - self.started
        return elapsed >= self.min_seconds and (self.polled or elapsed >= self.abandon_after)

    def status_body(self) -> Json:
        body: Json = {
            "name": self.id,
            "status": self.status,
            "startTime": iso(self.started),
        }
        if self.ended is not None:
            body["endTime"] = iso(self.ended)
        return body


@dataclass
class OperationBook:
    """Every operation by id (finished ones too, for late polls; the oldest are forgotten past KEEP), and the
    pending ones, which each ARM request checks."""

    KEEP: ClassVar[int] = 10_000
    operations: dict[str, Operation] = field(default_factory=dict)
    pending: dict[str, Operation] = field(default_factory=dict)

    def start(
        self,
        cloud: Cloud,
        *,
        name: str,
        namespace: str,
        subscription: str,
        location: str,
        target: str,
        finish: Callable[[], None] | None = None,
        result_status: int = 200,
        result_body: Any = None,
    ) -> Operation:
        knobs = settings(cloud)
        operation = Operation(
            id=str(uuid.uuid4()),
            name=name,
            namespace=namespace,
            subscription=subscription,
            location=(location or "westeurope").replace(" ", "").lower(),
            target=key(target),
            started=time.time(),
            min_seconds=knobs.operation_seconds,
            abandon_after=max(knobs.operation_seconds, knobs.abandoned_operation_seconds),
            finish=finish,
            result_status=result_status,
            result_body=result_body,
        )
        self.operations[operation.id] = operation
        self.pending[operation.id] = operation
        if len(self.operations) > self.KEEP:
            for old in [op for op in self.operations.values() if op.status != "InProgress"][: self.KEEP // 10]:
                del self.operations[old.id]
        return operation

    def settle(self) -> None:
        """Ends every operation that is due, oldest first, so the last writer's state wins."""
        now = time.time()
        for operation in list(self.pending.values()):
            if operation.due(now):
                del self.pending[operation.id]
                operation.status = "Succeeded"
                operation.ended = now
                if operation.finish is not None:
                    operation.finish()

    def observe(self, operation: Operation) -> None:
        operation.polled = True
        self.settle()

    def observe_resource(self, resource_id: str) -> None:
        """Reading a resource is how a body-polling client waits for it, so it counts as a poll of the operations
        on it, on its children and on its parents."""
        target = key(resource_id)
        for operation in self.pending.values():
            if (
                operation.target == target
                or operation.target.startswith(target + "/")
                or target.startswith(operation.target + "/")
            ):
                operation.polled = True
        self.settle()

    def in_progress_on(self, *targets: str) -> Operation | None:
        wanted = {key(t) for t in targets}
        return next((op for op in self.pending.values() if op.target in wanted), None)


def operations(cloud: Cloud) -> OperationBook:
    current = cloud.runtime.get("arm_operations")
    if current is None:
        current = OperationBook()
        cloud.runtime["arm_operations"] = current
    assert isinstance(current, OperationBook)
    return current


def _origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def operation_urls(request: Request, operation: Operation) -> tuple[str, str]:
    """(Azure-AsyncOperation status URL, Location result URL), on the host the client called."""
    api_version = request_params(request).get("api-version", "2024-07-01")
    base = (
        f"{_origin(request)}/subscriptions/{operation.subscription}/providers/{operation.namespace}"
        f"/locations/{operation.location}"
    )
    return (
        f"{base}/operations/{operation.id}?api-version={api_version}",
        f"{base}/operationResults/{operation.id}?api-version={api_version}",
    )


def accepted(
    request: Request,
    cloud: Cloud,
    operation: Operation,
    status_code: int,
    body: Any = None,
    *,
    location: bool = False,
) -> Response:
    """The first answer of a long-running operation."""
    status_url, result_url = operation_urls(request, operation)
    headers = {
        "Azure-AsyncOperation": status_url,
        "Retry-After": settings(cloud).retry_after_header(),
    }
    if location:
        headers["Location"] = result_url
    if body is None:
        return Response(status_code=status_code, headers=headers)
    return JSONResponse(body, status_code=status_code, headers=headers)


def another_operation_in_progress(cloud: Cloud, operation: Operation, resource: str) -> ArmError:
    """Microsoft.Network's answer to a write on a resource another operation holds."""
    knobs = settings(cloud)
    detail = (
        f"Operation {operation.name} ({operation.id}) is updating resource {resource}. "
        f"The call can be retried in {knobs.retry_after_seconds} seconds."
    )
    return ArmError(
        429,
        "RetryableError",
        "A retryable error occurred.",
        headers={"Retry-After": knobs.retry_after_header()},
        details=[{"code": "RetryableErrorDueToAnotherOperation", "message": detail}],
    )


def referenced_resource_not_provisioned(cloud: Cloud, operation: Operation, referenced: str, user: str) -> ArmError:
    """Microsoft.Network's answer when a write references a resource that is still Updating."""
    knobs = settings(cloud)
    detail = (
        f"Cannot proceed with operation because resource {referenced} used by resource {user} is not in Succeeded "
        f"state. Resource is in Updating state and the last operation that updated/is updating the resource is "
        f"{operation.name}."
    )
    return ArmError(
        429,
        "RetryableError",
        "A retryable error occurred.",
        headers={"Retry-After": knobs.retry_after_header()},
        details=[{"code": "ReferencedResourceNotProvisioned", "message": detail}],
    )


# --------------------------------------------------------------------------------------------------------------------
# the base of every ARM resource provider


class ArmProvider(Provider):
    """An ARM resource provider: api-version is required (any value), and operations that are due end before an
    operation looks at the state. Its helpers raise ARM's errors."""

    service = "arm"
    namespace: ClassVar[str] = ""  # the provider namespace its long-running operations report, e.g. Microsoft.Network

    async def before(self, request: Request) -> None:
        if not request_params(request).get("api-version"):
            raise ArmError(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        operations(self.cloud).settle()

    @property
    def store(self) -> ArmStore:
        return store(self.cloud)

    @property
    def operations(self) -> OperationBook:
        return operations(self.cloud)

    def require_scope(self, subscription: str, group: str | None = None) -> None:
        require_scope(self.cloud, subscription, group)

    def find(self, subscription: str, group: str, resource_type: str, name: str) -> Json:
        return find(self.cloud, subscription, group, resource_type, name)

    def listing(self, resource_type: str, subscription: str, group: str | None = None) -> Response:
        self.require_scope(subscription, group)
        return listing(self.store.of_type(resource_type, subscription, group))

    def not_locked(self, resource_id: str) -> None:
        """429 RetryableError while another operation holds the resource."""
        held = self.operations.in_progress_on(resource_id)
        if held is not None:
            raise another_operation_in_progress(self.cloud, held, resource_id)

    def start(self, name: str, target: Json, location: str | None = None, **kwargs: Any) -> Operation:
        """A long-running operation of this provider on `target` (a stored resource)."""
        parsed = ArmId.parse(target["id"])
        return self.operations.start(
            self.cloud,
            name=name,
            namespace=self.namespace,
            subscription=parsed.subscription if parsed else "",
            location=location or target.get("location") or "westeurope",
            target=target["id"],
            **kwargs,
        )

    def accepted(
        self,
        request: Request,
        operation: Operation,
        status_code: int,
        body: Any = None,
        *,
        location: bool = False,
    ) -> Response:
        return accepted(request, self.cloud, operation, status_code, body, location=location)


# --------------------------------------------------------------------------------------------------------------------
# subscription-level resources


def render_subscription(subscription: Json) -> Json:
    sub_id = subscription["subscriptionId"]
    return {
        "id": f"/subscriptions/{sub_id}",
        "authorizationSource": subscription.get("authorizationSource", "RoleBased"),
        "managedByTenants": subscription.get("managedByTenants", []),
        "subscriptionId": sub_id,
        "tenantId": subscription.get("tenantId"),
        "displayName": subscription.get("displayName", sub_id),
        "state": subscription.get("state", "Enabled"),
        "subscriptionPolicies": subscription.get(
            "subscriptionPolicies",
            {
                "locationPlacementId": "Public_2014-09-01",
                "quotaId": "PayAsYouGo_2014-09-01",
                "spendingLimit": "Off",
            },
        ),
        **({"tags": subscription["tags"]} if "tags" in subscription else {}),
    }


def render_group(group: Json) -> Json:
    body: Json = {
        "id": group.get("id") or group_id(group["subscriptionId"], group["name"]),
        "name": group["name"],
        "type": "Microsoft.Resources/resourceGroups",
        "location": group.get("location", "westeurope"),
        "properties": {"provisioningState": (group.get("properties") or {}).get("provisioningState", "Succeeded")},
    }
    if group.get("tags"):
        body["tags"] = group["tags"]
    if group.get("managedBy"):
        body["managedBy"] = group["managedBy"]
    return body


def _odata_string_filter(expression: str) -> dict[str, str]:
    """The `field eq 'value'` clauses (joined by `and`) of a simple ARM $filter, case-folded field names."""
    clauses: dict[str, str] = {}
    for clause in expression.replace(" AND ", " and ").split(" and "):
        field_name, op, value = clause.strip().partition(" eq ")
        if op and value.strip().startswith("'") and value.strip().endswith("'"):
            clauses[field_name.strip().lower()] = value.strip()[1:-1]
    return clauses


GROUP = "/subscriptions/{subscription}/resourcegroups/{group}"
OPERATIONS = "/subscriptions/{subscription}/providers/{namespace}/locations/{location}"


def _typed_routes(resource_type: str) -> tuple[str, str, str]:
    """(one in a group, a group's, a subscription's) routes of a read-only resource type."""
    namespace, _, type_name = resource_type.partition("/")
    group_list = f"{GROUP}/providers/{namespace}/{type_name}"
    return (
        group_list + "/{name}",
        group_list,
        f"/subscriptions/{{subscription}}/providers/{namespace}/{type_name}",
    )


WORKSPACE_ROUTES = _typed_routes(WORKSPACE_TYPE)
STORAGE_ROUTES = _typed_routes(STORAGE_TYPE)


class ResourcesProvider(ArmProvider):
    """Microsoft.Resources (subscriptions, resource groups, the generic listing), the read-only resource types
    (Log Analytics workspaces, storage accounts) and the status of every provider's long-running operations."""

    @route("GET", "/subscriptions")
    async def list_subscriptions(self, request: Request) -> Response:
        values = [render_subscription(s) for s in self.store.subscriptions]
        return JSONResponse({"value": values, "count": {"type": "Total", "value": len(values)}})

    @route("GET", "/subscriptions/{subscription}")
    async def get_subscription(self, request: Request, subscription: str) -> Response:
        found = self.store.subscription(subscription)
        if found is None:
            raise subscription_not_found(subscription)
        return JSONResponse(render_subscription(found))

    @route("GET", "/subscriptions/{subscription}/resourcegroups")
    async def list_groups(self, request: Request, subscription: str) -> Response:
        self.require_scope(subscription)
        groups = [g for g in self.store.groups if str(g.get("subscriptionId", "")).lower() == subscription.lower()]
        return JSONResponse({"value": [render_group(g) for g in groups]})

    @route("GET", GROUP)
    async def get_group(self, request: Request, subscription: str, group: str) -> Response:
        self.require_scope(subscription, group)
        found = self.store.group(subscription, group)
        assert found is not None
        return JSONResponse(render_group(found))

    @route("GET", "/subscriptions/{subscription}/resources")
    @route("GET", GROUP + "/resources")
    async def list_resources(self, request: Request, subscription: str, group: str | None = None) -> Response:
        self.require_scope(subscription, group)
        wanted = _odata_string_filter(request_params(request).get("$filter", ""))
        items = []
        for resource in self.store.in_scope(subscription, group):
            if "resourcetype" in wanted and str(resource.get("type", "")).lower() != wanted["resourcetype"].lower():
                continue
            if "name" in wanted and str(resource.get("name", "")).lower() != wanted["name"].lower():
                continue
            # The generic listing shows the envelope only, like GET /resources does.
            envelope = ("id", "name", "type", "location", "tags", "kind", "sku")
            items.append({k: copy.deepcopy(v) for k, v in resource.items() if k in envelope})
        return JSONResponse({"value": items})

    @route("GET", WORKSPACE_ROUTES[0], resource_type=WORKSPACE_TYPE)
    @route("GET", STORAGE_ROUTES[0], resource_type=STORAGE_TYPE)
    async def get_typed(
        self,
        request: Request,
        subscription: str,
        group: str,
        name: str,
        resource_type: str,
    ) -> Response:
        return JSONResponse(render(self.find(subscription, group, resource_type, name)))

    @route("GET", WORKSPACE_ROUTES[1], resource_type=WORKSPACE_TYPE)
    @route("GET", WORKSPACE_ROUTES[2], resource_type=WORKSPACE_TYPE)
    @route("GET", STORAGE_ROUTES[1], resource_type=STORAGE_TYPE)
    @route("GET", STORAGE_ROUTES[2], resource_type=STORAGE_TYPE)
    async def list_typed(
        self,
        request: Request,
        subscription: str,
        resource_type: str,
        group: str | None = None,
    ) -> Response:
        return self.listing(resource_type, subscription, group)

    def _operation(self, subscription: str, operation_id: str) -> Operation:
        found = self.operations.operations.get(operation_id)
        if found is None or found.subscription.lower() != subscription.lower():
            raise ArmError(
                404,
                "OperationNotFound",
                f"The operation '{operation_id}' could not be found.",
            )
        self.operations.observe(found)
        return found

    @route("GET", OPERATIONS + "/operations/{operation_id}")
    async def operation_status(
        self,
        request: Request,
        subscription: str,
        namespace: str,
        location: str,
        operation_id: str,
    ) -> Response:
        found = self._operation(subscription, operation_id)
        headers = {"Retry-After": settings(self.cloud).retry_after_header()} if found.status == "InProgress" else None
        return JSONResponse(found.status_body(), headers=headers)

    @route("GET", OPERATIONS + "/operationResults/{operation_id}")
    async def operation_result(
        self,
        request: Request,
        subscription: str,
        namespace: str,
        location: str,
        operation_id: str,
    ) -> Response:
        found = self._operation(subscription, operation_id)
        if found.status == "InProgress":
            _, result_url = operation_urls(request, found)
            retry_after = settings(self.cloud).retry_after_header()
            return Response(
                status_code=202,
                headers={"Location": result_url, "Retry-After": retry_after},
            )
        if found.result_body is None:
            return Response(status_code=found.result_status)
        return JSONResponse(found.result_body, status_code=found.result_status)

    # Timing knobs for tests and demos; reset with the tenant (POST /_admin/reset).
    @route("GET", "/_admin/arm/settings", service="admin", authenticated=False)
    async def get_settings(self, request: Request) -> Response:
        return JSONResponse(settings(self.cloud).as_json())

    @route("PATCH", "/_admin/arm/settings", service="admin", authenticated=False)
    async def patch_settings(self, request: Request) -> Response:
        unknown = settings(self.cloud).update(await read_json(request))
        if unknown:
            raise AdminError(400, f"Unknown or invalid settings: {', '.join(sorted(unknown))}")
        return JSONResponse(settings(self.cloud).as_json())
