"""What the Azure Resource Manager adapters share (compute, network, authorization, sentinel): the keyword arguments
every azure-core ARM client gets, one SDK client per subscription, and the translation of SDK exceptions into
shared.azure.errors. ARM ids themselves are parsed by shared.armid, which knows no SDK. The SDK is imported inside
functions only, so importing this module costs nothing at cold start."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Generic, TypeVar

from shared.azure.errors import AzureError, from_sdk
from shared.azure.limits import Admission, retry_after_seconds
from shared.settings import Settings

# Only POSTs that are safe to repeat go through the ARM adapters (power actions; queryStatus, stop and effective rules
# in the network adapter), so a 429 or 5xx on them is retried like a GET or PUT. azure-core retries POST on 500/503/504
# only, and a throttled POST without Retry-After would otherwise fail at once.
IDEMPOTENT_POST = frozenset({"HEAD", "GET", "PUT", "DELETE", "OPTIONS", "TRACE", "POST"})


def arm_client_kwargs(settings: Settings, *policies: Any, per_retry: Sequence[Any] = ()) -> dict[str, Any]:
    """Keyword arguments every azure-core ARM client gets: endpoint, CA, retries, LRO polling, our limit policies
    (`policies` once per call, `per_retry` on every attempt)."""
    kwargs: dict[str, Any] = {
        "base_url": settings.arm_endpoint,
        # Without Retry-After the mgmt SDKs poll every 30 s; the service's Retry-After wins over this when sent.
        "polling_interval": settings.lro_poll_seconds,
        "retry_total": settings.max_retries,
        "retry_backoff_factor": settings.retry_backoff_seconds,
        "per_call_policies": list(policies),
        "per_retry_policies": list(per_retry),
    }
    if settings.ca_bundle:
        kwargs["connection_verify"] = settings.ca_bundle
    return kwargs


def admission_policy(limiter: Admission, methods: frozenset[str]) -> Any:
    """An azure-core policy for per_retry, for requests with one of `methods`: each retry waits for the limiter (the
    adapter acquires before the first attempt), and a 429 tells it, so no instance sends again before Retry-After."""
    from azure.core.pipeline import PipelineRequest, PipelineResponse
    from azure.core.pipeline.policies import AsyncHTTPPolicy

    class AdmissionPolicy(AsyncHTTPPolicy):  # type: ignore[type-arg]
        async def send(self, request: PipelineRequest[Any]) -> PipelineResponse[Any, Any]:
            limited = request.http_request.method.upper() in methods
            if limited and request.context.get("riposte_attempted"):
                await limiter.acquire()
            request.context["riposte_attempted"] = True
            response: PipelineResponse[Any, Any] = await self.next.send(request)
            if limited and response.http_response.status_code == 429:
                await limiter.throttled(retry_after_seconds(response.http_response.headers.get("Retry-After")))
            return response

    return AdmissionPolicy()


def client_kwargs(settings: Settings) -> dict[str, Any]:
    """arm_client_kwargs plus retry_status, so RIPOSTE_MAX_RETRIES bounds 429/503 retries too (azure-core's own
    default of 3 status retries would otherwise cap it)."""
    kwargs = arm_client_kwargs(settings)
    kwargs["retry_status"] = settings.max_retries
    return kwargs


@asynccontextmanager
async def translated(service: str) -> AsyncIterator[None]:
    """SDK exceptions leave the adapter as shared.azure.errors.AzureError (NotFound, PreconditionFailed...)."""
    try:
        yield
    except AzureError:
        raise
    except Exception as error:
        from azure.core.exceptions import AzureError as SdkError

        if isinstance(error, SdkError):
            raise from_sdk(service, error) from error
        raise


def as_json(model: Any) -> dict[str, Any]:
    """The REST JSON shape of an SDK model (the mgmt models are MutableMappings over the wire names)."""
    if model is None:
        return {}
    as_dict: Callable[[], dict[str, Any]] | None = getattr(model, "as_dict", None)
    return as_dict() if as_dict is not None else dict(model)


C = TypeVar("C")


class SubscriptionClients(Generic[C]):
    """One SDK client per subscription, built on first use from `build(subscription)`, closed together."""

    def __init__(self, build: Callable[[str], C]) -> None:
        self._build = build
        self._clients: dict[str, C] = {}

    def get(self, subscription: str) -> C:
        key = subscription.lower()
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = self._build(subscription)
        return client

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            close: Any = getattr(client, "close", None)
            if close is not None:
                await close()
