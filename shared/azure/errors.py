"""One error type for every Azure API, so actions and the engine never see an SDK exception."""

from __future__ import annotations

from typing import Any


class AzureError(Exception):
    def __init__(self, service: str, status: int | None, code: str, message: str) -> None:
        super().__init__(f"{service} {status or ''} {code}: {message}".replace("  ", " "))
        self.service = service
        self.status = status
        self.code = code
        self.message = message

    @property
    def retryable(self) -> bool:
        return self.status in (408, 429, 500, 502, 503, 504) or self.status is None


class NotFound(AzureError):
    pass


class PreconditionFailed(AzureError):
    pass


class Forbidden(AzureError):
    pass


class Throttled(AzureError):
    pass


def _classify(service: str, status: int | None, code: str, message: str) -> AzureError:
    cls: type[AzureError] = {404: NotFound, 412: PreconditionFailed, 403: Forbidden, 429: Throttled}.get(
        status or 0, AzureError
    )
    return cls(service, status, code, message)


def from_sdk(service: str, error: BaseException) -> AzureError:
    """Translate azure-core's HttpResponseError / ServiceRequestError and kiota's ODataError / APIError."""
    if isinstance(error, AzureError):
        return error
    status: int | None = getattr(error, "status_code", None) or getattr(error, "response_status_code", None)
    code = ""
    message = str(error)
    odata: Any = getattr(error, "error", None)
    if odata is not None and hasattr(odata, "code"):  # kiota ODataError: .error.code / .error.message
        code = odata.code or ""
        message = odata.message or message
    elif odata is not None and hasattr(odata, "code") is False and hasattr(error, "message"):
        message = str(getattr(error, "message", message))
    azure_error: Any = getattr(error, "error", None)
    if not code and azure_error is not None and getattr(azure_error, "code", None):  # azure-core ODataV4Format
        code = str(azure_error.code)
        message = str(getattr(azure_error, "message", "") or message)
    if not code:
        code = type(error).__name__
    return _classify(service, status, code, message.splitlines()[0] if message else code)
