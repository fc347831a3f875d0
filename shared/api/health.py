"""GET /api/health: liveness and a configuration check that never reveals secrets."""

from __future__ import annotations

import azure.functions as func

from shared.api.responses import json_response
from shared.settings import Settings, SettingsError


def get_health(req: func.HttpRequest) -> func.HttpResponse:
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        return json_response({"status": "unhealthy", "problems": [str(error)]}, 503)
    return json_response(
        {
            "status": "healthy",
            "limits": {
                "maxBodyBytes": settings.max_body_bytes,
                "maxEntities": settings.max_entities,
                "maxJsonDepth": settings.max_json_depth,
            },
        }
    )
