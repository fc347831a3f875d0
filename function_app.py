"""Riposte's Azure Functions bindings. Each body is a few lines that call into `shared`; nothing else lives here."""

import azure.functions as func

from shared.api import console_routes, health, intake_routes, openapi, runs_routes, worker
from shared.api.context import configured  # with bad settings, a route answers 503 naming the setting
from shared.azure.storage import POISON_QUEUE, WORK_QUEUE

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.function_name("incidents")
@app.route(route="incidents", methods=["POST"])
@configured
async def incidents(req: func.HttpRequest) -> func.HttpResponse:
    return await runs_routes.post_incident(req)


@app.function_name("events")
@app.route(route="events", methods=["POST", "OPTIONS"])
@configured
async def events(req: func.HttpRequest) -> func.HttpResponse:
    if req.method.upper() == "OPTIONS":
        return intake_routes.events_preflight(req)
    return await intake_routes.post_events(req)


@app.function_name("defender_alert")
@app.event_grid_trigger(arg_name="event")
async def defender_alert(event: func.EventGridEvent) -> None:
    await intake_routes.on_event_grid_event(event)


@app.function_name("run_status")
@app.route(route="runs/{id}", methods=["GET"])
@configured
async def run_status(req: func.HttpRequest) -> func.HttpResponse:
    return await runs_routes.get_run(req)


@app.function_name("runs")
@app.route(route="runs", methods=["GET"])
@configured
async def runs(req: func.HttpRequest) -> func.HttpResponse:
    return await runs_routes.list_runs(req)


@app.function_name("approve")
@app.route(route="runs/{id}/approve", methods=["POST"])
@configured
async def approve(req: func.HttpRequest) -> func.HttpResponse:
    return await runs_routes.decide(req, "approve")


@app.function_name("reject")
@app.route(route="runs/{id}/reject", methods=["POST"])
@configured
async def reject(req: func.HttpRequest) -> func.HttpResponse:
    return await runs_routes.decide(req, "reject")


@app.function_name("rollback")
@app.route(route="runs/{id}/rollback", methods=["POST"])
@configured
async def rollback(req: func.HttpRequest) -> func.HttpResponse:
    return await runs_routes.rollback(req)


@app.function_name("playbooks")
@app.route(route="playbooks", methods=["GET"])
@configured
def playbooks(req: func.HttpRequest) -> func.HttpResponse:
    return runs_routes.get_playbooks(req)


@app.function_name("manual_run")
@app.route(route="playbooks/{name}/runs", methods=["POST"])
@configured
async def manual_run(req: func.HttpRequest) -> func.HttpResponse:
    return await runs_routes.manual_run(req)


@app.function_name("run_worker")
@app.queue_trigger(arg_name="msg", queue_name=WORK_QUEUE, connection="AzureWebJobsStorage")
async def run_worker(msg: func.QueueMessage) -> None:
    await worker.on_work_item(msg)


@app.function_name("run_poison")
@app.queue_trigger(arg_name="msg", queue_name=POISON_QUEUE, connection="AzureWebJobsStorage")
async def run_poison(msg: func.QueueMessage) -> None:
    await worker.on_poison_item(msg)


@app.function_name("health")
@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health_check(req: func.HttpRequest) -> func.HttpResponse:
    return health.get_health(req)


@app.function_name("openapi")
@app.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def openapi_document(req: func.HttpRequest) -> func.HttpResponse:
    return openapi.get_openapi(req)


@app.function_name("console")
@app.route(route="console/{*path}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def console(req: func.HttpRequest) -> func.HttpResponse:
    return console_routes.get_console(req)
