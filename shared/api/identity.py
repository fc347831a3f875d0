"""Who is calling. Until Entra ID app roles land (issue 6), analyst routes know only the function key holder, or the
App Service Authentication principal when RIPOSTE_TRUST_APP_SERVICE_AUTH says that front door is on."""

from __future__ import annotations

import os

import azure.functions as func


def caller(req: func.HttpRequest) -> str:
    if os.environ.get("RIPOSTE_TRUST_APP_SERVICE_AUTH", "").lower() == "true":
        name = req.headers.get("x-ms-client-principal-name")
        if name:
            return str(name)
    return "function-key"
