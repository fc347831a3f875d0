"""Error bodies in each service's own shape."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.responses import JSONResponse, Response


def _graph_inner(request_id: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    inner: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": request_id,
        "client-request-id": request_id,
    }
    if extra:
        inner.update(extra)
    return inner


def graph_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    request_id = str(uuid.uuid4())
    body = {"error": {"code": code, "message": message, "innerError": _graph_inner(request_id)}}
    return JSONResponse(body, status_code=status, headers={"request-id": request_id, **(headers or {})})


def arm_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    request_id = str(uuid.uuid4())
    return JSONResponse(
        {"error": {"code": code, "message": message}},
        status_code=status,
        headers={"x-ms-request-id": request_id, "x-ms-correlation-request-id": request_id, **(headers or {})},
    )


def loganalytics_error(
    status: int,
    code: str,
    message: str,
    inner: dict[str, object] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    error: dict[str, object] = {"message": message, "code": code, "correlationId": str(uuid.uuid4())}
    if inner:
        error["innererror"] = inner
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def error_for(service: str, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    if service == "graph":
        return graph_error(status, code, message, headers)
    if service == "loganalytics":
        return loganalytics_error(status, code, message, headers=headers)
    return arm_error(status, code, message, headers)


def retry_after_header(seconds: float | None) -> dict[str, str]:
    """Retry-After is whole seconds; 0 would read as 'absent' to azure-core, so round up to at least 1."""
    if seconds is None:
        return {}
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


def throttled(service: str, retry_after: float | None, code: str | None = None, message: str | None = None) -> Response:
    """A 429 the way each service sends it. retry_after None means no Retry-After header (Identity Protection)."""
    headers = retry_after_header(retry_after)
    if service == "graph":
        request_id = str(uuid.uuid4())
        inner = _graph_inner(request_id, {"code": "429", "message": "Please retry after", "status": "429"})
        body = {
            "error": {
                "code": code or "TooManyRequests",
                "message": message or "Please retry again later.",
                "innerError": inner,
            }
        }
        return JSONResponse(body, status_code=429, headers={"request-id": request_id, **headers})
    if service == "loganalytics":
        return loganalytics_error(
            429, code or "ThrottledError", message or "Too many requests. Retry later.", headers=headers
        )
    return arm_error(429, code or "TooManyRequests", message or "The request is being throttled.", headers)
