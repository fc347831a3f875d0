"""The Logic Apps custom connector: generated from the API's operation table and models (so it cannot drift from the
routes), valid Swagger 2.0 with the x-ms-* extensions the designer reads, and deployed by infra/ as
Microsoft.Web/customApis."""

from __future__ import annotations

import json

from openapi_spec_validator import validate

from tests.infra import bicep
from tools import gen_connector


def test_the_committed_connector_is_the_generated_one_and_valid_swagger_2() -> None:
    assert gen_connector.main(["--check"]) == 0, "run python -m tools.gen_connector"
    document = json.loads(gen_connector.CONNECTOR.read_text())
    assert document["swagger"] == "2.0"
    validate(document)


def test_the_designer_gets_its_actions_picker_and_names() -> None:
    paths = gen_connector.connector()["paths"]
    ops = {op["operationId"]: op for path in paths.values() for op in path.values()}
    assert {"RunPlaybook", "GetRun", "ApproveStep", "RejectStep", "RollbackRun", "SubmitIncident"} <= set(ops)
    assert ops["ListPlaybooks"]["x-ms-visibility"] == "internal"  # the picker's source, not an action
    name = next(p for p in ops["RunPlaybook"]["parameters"] if p["name"] == "name")
    assert name["x-ms-dynamic-values"]["operationId"] == "ListPlaybooks"
    assert all("x-ms-summary" in p for op in ops.values() for p in op["parameters"] if p["in"] != "body")
    assert {h for h in ops["RunPlaybook"]["responses"]["202"]["headers"]} == {"Location", "Retry-After"}
    assert any(p["name"] == "Authorization" for p in ops["ApproveStep"]["parameters"])  # an analyst action
    assert not any(p["name"] == "Authorization" for p in ops["SubmitIncident"]["parameters"])  # the key suffices


def test_infra_deploys_it_as_a_custom_api() -> None:
    module = bicep.read("modules/connector.bicep")
    assert "resource connector 'Microsoft.Web/customApis@2016-06-01'" in module
    assert "loadJsonContent('../connector/riposte.swagger.json')" in module
    main = bicep.read("main.bicep")
    assert "module connector 'modules/connector.bicep' = if (deployConnector)" in main
    assert "hostName: replace(functionApp.outputs.url, 'https://', '')" in main
