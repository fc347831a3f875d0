"""App Service Authentication is deployed exactly when Riposte is told to trust X-MS-CLIENT-PRINCIPAL, configured so
the machine routes' function-key callers still get through, and never told to trust the header without it."""

from __future__ import annotations

import re

from tests.infra import bicep

MAIN = bicep.read("main.bicep")
APP = bicep.read("modules/functionapp.bicep")
AUTH = bicep.read("modules/appservice-auth.bicep")


def test_the_principal_header_is_trusted_only_where_app_service_authentication_is_deployed() -> None:
    settings = bicep.declaration(MAIN, r"var riposteSettings")
    trusted = re.search(r"RIPOSTE_TRUST_APP_SERVICE_AUTH:\s*(.+)", settings)
    assert trusted is not None
    call = bicep.modules(MAIN, "modules/functionapp.bicep")["functionApp"]
    deployed = re.search(r"appServiceAuthentication:\s*(.+)", call)
    assert deployed is not None
    # the same condition turns both on: string() of it for the setting, the bool itself for the module
    assert trusted.group(1).strip() == f"string({deployed.group(1).strip()})"
    assert "trustAppServiceAuth" in deployed.group(1) and "!empty(apiClientId)" in deployed.group(1)
    assert re.search(r"authClientId:\s*apiClientId\b", call)


def test_authsettings_v2_turns_on_entra_id_and_lets_function_key_callers_through() -> None:
    call = bicep.modules(APP, "appservice-auth.bicep")
    assert set(call) == {"authentication"}
    assert re.search(r"^module authentication 'appservice-auth\.bicep' = if \(appServiceAuthentication\)", APP, re.M), (
        "App Service Authentication must be deployed when, and only when, appServiceAuthentication"
    )
    assert re.search(r"siteName:\s*site\.name", call["authentication"])
    assert re.search(r"clientId:\s*authClientId", call["authentication"])

    body = bicep.declaration(AUTH, r"resource authSettings 'Microsoft\.Web/sites/config@[\d-]+' =")
    clean = bicep.strip_comments(body)
    assert "name: 'authsettingsV2'" in clean and "parent: site" in clean
    assert re.search(r"platform:\s*\{\s*enabled:\s*true", clean)  # what makes the platform set WEBSITE_AUTH_ENABLED
    # The relays and Event Grid bring a function key and no token: App Service must not turn them away.
    assert "requireAuthentication: false" in clean and "unauthenticatedClientAction: 'AllowAnonymous'" in clean
    entra = bicep.body_at(clean, clean.index("azureActiveDirectory:"))
    assert "enabled: true" in entra and "clientId: clientId" in entra
    assert "${tenant().tenantId}/v2.0" in entra
    assert re.search(r"allowedAudiences:\s*\[\s*clientId\s+'api://\$\{clientId\}'\s*\]", entra)
    assert "requireHttps: true" in clean


def test_the_template_no_longer_says_app_service_authentication_is_left_to_the_operator() -> None:
    described = bicep.params(MAIN)
    assert described["trustAppServiceAuth"] == "false"
    assert "App Service Authentication" in MAIN.split("param trustAppServiceAuth")[0].rsplit("@description", 1)[1]
