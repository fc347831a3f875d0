"""Riposte's Azure Functions bindings. Each body is a few lines that call into `shared`; nothing else lives here."""

import azure.functions as func

from shared.api import health, intake_routes

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.function_name("incidents")
@app.route(route="incidents", methods=["POST"])
def incidents(req: func.HttpRequest) -> func.HttpResponse:
    return intake_routes.post_incident(req)


@app.function_name("events")
@app.route(route="events", methods=["POST", "OPTIONS"])
def events(req: func.HttpRequest) -> func.HttpResponse:
    if req.method.upper() == "OPTIONS":
        return intake_routes.events_preflight(req)
    return intake_routes.post_events(req)


@app.function_name("defender_alert")
@app.event_grid_trigger(arg_name="event")
def defender_alert(event: func.EventGridEvent) -> None:
    intake_routes.on_event_grid_event(event)


@app.function_name("health")
@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health_check(req: func.HttpRequest) -> func.HttpResponse:
    return health.get_health(req)
