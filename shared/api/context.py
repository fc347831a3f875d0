"""The per-process start-up and application service used by the routes and triggers.

Start-up, on the first invocation rather than at import (a cold start stays fast): the settings are read and
validated, and telemetry is configured. Bad settings do not stop the app from loading: health reports them, every
HTTP route answers 503 naming the bad setting, and triggers fail with the same message in the log.

One Service per event loop: the storage and Azure clients are async and belong to the loop that made them."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar, cast

import azure.functions as func

from shared.azure.errors import AzureError
from shared.perloop import PerLoop
from shared.settings import SettingsError, get_settings

if TYPE_CHECKING:
    from shared.service import Service

_SERVICES: PerLoop[Service] = PerLoop()

Handler = TypeVar("Handler", bound=Callable[..., func.HttpResponse | Awaitable[func.HttpResponse]])


def start() -> None:
    """Validates the settings (SettingsError names the bad one) and configures telemetry. Cheap after the first call."""
    from shared import telemetry

    telemetry.configure()
    get_settings()


def settings_problem() -> func.HttpResponse | None:
    """None when the settings are valid; otherwise the 503 every route answers until they are fixed."""
    from shared.api.responses import error_response

    try:
        start()
    except SettingsError as error:
        return error_response(503, "InvalidSetting", f"Riposte is not configured correctly: {error}", error.variable)
    return None


STORAGE_RETRY_AFTER_S = 5


def storage_unavailable(error: AzureError) -> func.HttpResponse:
    """Our own state store failing is the server's trouble, not the caller's: a 503 the caller can retry (Logic Apps and
    Event Grid do on 503 with Retry-After), never the host's bare 500. Storage writes are conditional, so a retry of a
    half-done intake finds the delivery already claimed and joins it."""
    from shared.api.responses import error_response

    logging.getLogger("riposte.api").warning("storage unavailable: %s", error)
    response = error_response(503, "StorageUnavailable", f"Riposte's state store did not answer: {error.code}", "")
    response.headers["Retry-After"] = str(STORAGE_RETRY_AFTER_S)
    return response


def configured(handler: Handler) -> Handler:
    """For HTTP routes: answer 503 with the settings problem, or when storage fails, instead of failing with a 500."""
    if inspect.iscoroutinefunction(handler):

        @functools.wraps(handler)
        async def guarded_async(req: func.HttpRequest) -> func.HttpResponse:
            problem = settings_problem()
            if problem is not None:
                return problem
            try:
                response: func.HttpResponse = await handler(req)
            except AzureError as error:
                if error.service != "storage":
                    raise
                return storage_unavailable(error)
            return response

        return cast("Handler", guarded_async)

    @functools.wraps(handler)
    def guarded(req: func.HttpRequest) -> func.HttpResponse:
        problem = settings_problem()
        if problem is not None:
            return problem
        try:
            return cast("func.HttpResponse", handler(req))
        except AzureError as error:
            if error.service != "storage":
                raise
            return storage_unavailable(error)

    return cast("Handler", guarded)


async def get_service() -> Service:
    return await _SERVICES.aget(_new_service)


async def _new_service() -> Service:
    from shared.service import Service
    from shared.store.runs import RunStore

    start()  # a trigger with bad settings fails here, naming the setting in the log
    store = RunStore()
    await store.ensure()
    return Service(get_settings(), store)
