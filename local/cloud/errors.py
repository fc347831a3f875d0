"""Errors in each API family's own shape. A provider raises one of these; the app turns it into the response in one
place (CloudApp), so an operation reads as its happy path plus the `raise`s the real service would answer with."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response


class CloudError(Exception):
    """A failure an emulated service reports: an HTTP status, the service's error code and message, extra headers."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}

    def response(self, request: Request | None = None) -> Response:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers or None)


class ArmError(CloudError):
    """Azure Resource Manager and its resource providers: {"error": {code, message[, details]}} plus request ids."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(status, code, message, headers)
        self.details = details

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        return {"error": error}

    def response(self, request: Request | None = None) -> Response:
        if self.details is not None:  # the providers' detailed errors (RetryableError...) come without request ids
            return JSONResponse(self.body(), status_code=self.status, headers=self.headers or None)
        request_id = str(uuid.uuid4())
        ids = {"x-ms-request-id": request_id, "x-ms-correlation-request-id": request_id}
        return JSONResponse(self.body(), status_code=self.status, headers={**ids, **self.headers})


def graph_headers(request: Request) -> dict[str, str]:
    """What Graph sends with every answer: a request id, the caller's client-request-id echoed, the OData version."""
    client_id = request.headers.get("client-request-id") or str(uuid.uuid4())
    return {"request-id": str(uuid.uuid4()), "client-request-id": client_id, "OData-Version": "4.0"}


class GraphError(CloudError):
    """Microsoft Graph's OData error: {"error": {code, message, innerError: {date, request-id, ...}}}."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        inner: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(status, code, message, headers)
        self.inner = inner or {}
        self.request_id = str(uuid.uuid4())

    def body(self) -> dict[str, Any]:
        inner: dict[str, Any] = {
            "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            "request-id": self.request_id,
            "client-request-id": self.request_id,
            **self.inner,
        }
        return {"error": {"code": self.code, "message": self.message, "innerError": inner}}

    def response(self, request: Request | None = None) -> Response:
        """With the request (an operation's error), Graph's usual headers; without (the pipeline's), the bare ids."""
        headers = {"request-id": self.request_id, **(graph_headers(request) if request else {}), **self.headers}
        return JSONResponse(self.body(), status_code=self.status, headers=headers)


class LogAnalyticsError(CloudError):
    """The Log Analytics query API: {"error": {message, code, correlationId[, innererror]}}."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        inner: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, code, message, headers)
        self.inner = inner

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "code": self.code, "correlationId": str(uuid.uuid4())}
        if self.inner:
            error["innererror"] = self.inner
        return {"error": error}


class MdeError(CloudError):
    """Microsoft Defender for Endpoint's API: {"error": {code, message, target}}, target a correlation id."""

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "target": str(uuid.uuid4())}}


class IdentityError(CloudError):
    """The managed-identity endpoint: {"statusCode", "message"}."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, str(status), message)

    def body(self) -> dict[str, Any]:
        return {"statusCode": self.status, "message": self.message}


class LoginError(CloudError):
    """The Microsoft identity platform (login.microsoftonline.com): {"error", "error_description", "error_codes"}."""

    def __init__(self, status: int, code: str, message: str, error_codes: list[int] | None = None) -> None:
        super().__init__(status, code, message)
        self.error_codes = error_codes or []

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "error_description": self.message, "error_codes": self.error_codes}


class AdminError(CloudError):
    """The emulator's own admin API: {"error": {code, message}}, nothing else."""

    def __init__(self, status: int, message: str, code: str = "BadRequest") -> None:
        super().__init__(status, code, message)


def service_error(
    service: str, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> CloudError:
    """An error of the pipeline (auth, routing, faults), which answers before or instead of an operation, in the
    shape of the service the request was for."""
    if service == "graph":
        return GraphError(status, code, message, headers)
    if service == "loganalytics":
        return LogAnalyticsError(status, code, message, headers=headers)
    if service == "mde":
        return MdeError(status, code, message, headers)
    return ArmError(status, code, message, headers)


def error_for(service: str, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return service_error(service, status, code, message, headers).response()


def retry_after_header(seconds: float | None) -> dict[str, str]:
    """Retry-After is whole seconds; 0 would read as 'absent' to azure-core, so round up to at least 1."""
    if seconds is None:
        return {}
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


def throttled(service: str, retry_after: float | None, code: str | None = None, message: str | None = None) -> Response:
    """A 429 the way each service sends it. retry_after None means no Retry-After header (Identity Protection)."""
    headers = retry_after_header(retry_after)
    if service == "graph":
        inner = {"code": "429", "message": "Please retry after", "status": "429"}
        error = GraphError(429, code or "TooManyRequests", message or "Please retry again later.", headers, inner)
        return error.response()
    if service == "loganalytics":
        text = message or "Too many requests. Retry later."
        return LogAnalyticsError(429, code or "ThrottledError", text, headers=headers).response()
    if service == "mde":
        text = message or "API calls quota exceeded! Maximum admitted 100 per 1 Minute."
        return MdeError(429, code or "TooManyRequests", text, headers).response()
    return ArmError(429, code or "TooManyRequests", message or "The request is being throttled.", headers).response()
