"""JSON responses and the one error shape: {"error": {"code", "message", "target"}}."""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func

from shared.intake import IntakeError


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    try:
        encoded = json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: intake refuses them, but a response must never fail on one
        encoded = json.dumps(body).encode("ascii")
    return func.HttpResponse(
        encoded,
        status_code=status,
        mimetype="application/json",
        headers=headers,
        charset="utf-8",
    )


def error_response(status: int, code: str, message: str, target: str = "") -> func.HttpResponse:
    return json_response({"error": {"code": code, "message": message, "target": target}}, status)


def intake_error_response(error: IntakeError) -> func.HttpResponse:
    return json_response(error.as_body(), error.status)
