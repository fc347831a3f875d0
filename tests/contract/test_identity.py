"""The managed-identity endpoint against the real azure-identity credentials, and the bearer check every service
applies (401 in each service's own error shape)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import pytest
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential
from azure.identity.aio import DefaultAzureCredential as AsyncDefaultAzureCredential
from azure.identity.aio import ManagedIdentityCredential as AsyncManagedIdentityCredential

from local.cloud import identity

TENANT_ID = "6f1d3c2e-5a4b-4c8d-9e7f-0a1b2c3d4e5f"
RIPOSTE_PRINCIPAL = "0d7c3b2a-8e4f-4a1b-9c6d-5e4f3a2b1c0d"
SUBSCRIPTION = "8c2b5f0e-3d4a-4b6c-9a1e-7f2d3c4b5a60"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
ARM_SCOPE = "https://management.azure.com/.default"


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


def client(cloud: Any) -> httpx.Client:
    return httpx.Client(base_url=cloud.url, verify=cloud.ca_path)


def test_default_credential_gets_a_token_from_the_emulated_managed_identity(cloud):
    credential = DefaultAzureCredential()
    token = credential.get_token(ARM_SCOPE)
    assert token.expires_on > time.time() + 3000
    issued = claims(token.token)
    assert issued["aud"] == "https://management.azure.com"
    assert issued["tid"] == TENANT_ID
    assert issued["oid"] == RIPOSTE_PRINCIPAL
    assert issued["idtyp"] == "app"
    msi_calls = [r for r in cloud.requests(service="identity") if r["path"] == "/msi/token"]
    assert msi_calls, "the credential must have asked the emulator's /msi/token"
    assert "resource=https" in msi_calls[-1]["query"]


def test_managed_identity_credential_works_directly(cloud):
    token = ManagedIdentityCredential().get_token(GRAPH_SCOPE)
    assert claims(token.token)["aud"] == "https://graph.microsoft.com"


async def test_async_credentials_get_tokens(cloud):
    async with AsyncDefaultAzureCredential() as credential:
        token = await credential.get_token("https://api.loganalytics.io/.default")
    assert claims(token.token)["aud"] == "https://api.loganalytics.io"
    async with AsyncManagedIdentityCredential() as managed:
        token = await managed.get_token(ARM_SCOPE)
    assert claims(token.token)["aud"] == "https://management.azure.com"


def test_token_endpoint_rejects_a_wrong_identity_header(cloud):
    with client(cloud) as http:
        wrong = http.get(
            "/msi/token",
            params={"resource": "https://graph.microsoft.com"},
            headers={"X-IDENTITY-HEADER": "not-the-secret"},
        )
        missing_resource = http.get("/msi/token", headers={"X-IDENTITY-HEADER": cloud.server.cloud.identity_header})
    assert wrong.status_code == 400
    assert missing_resource.status_code == 400


def test_graph_without_token_is_401_in_graph_shape(cloud):
    with client(cloud) as http:
        response = http.get("/v1.0/users")
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "InvalidAuthenticationToken"
    assert error["message"] == "Access token is empty."
    assert set(error["innerError"]) >= {"date", "request-id", "client-request-id"}
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_arm_without_token_is_401_in_arm_shape_even_on_unknown_paths(cloud):
    with client(cloud) as http:
        known = http.get(f"/subscriptions/{SUBSCRIPTION}/resourcegroups", params={"api-version": "2021-04-01"})
        unknown = http.get(
            f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Nothing/things/x", params={"api-version": "2021-04-01"}
        )
    for response in (known, unknown):
        assert response.status_code == 401
        assert response.json() == {
            "error": {
                "code": "AuthenticationFailed",
                "message": "Authentication failed. The 'Authorization' header is missing.",
            }
        }


def test_log_analytics_without_token_is_401_in_its_shape(cloud):
    with client(cloud) as http:
        response = http.post(f"/v1/workspaces/{TENANT_ID}/query", json={"query": "print 1"})
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "AuthorizationRequiredError"
    assert "correlationId" in error


def test_a_token_for_another_service_is_rejected(cloud):
    graph_token = DefaultAzureCredential().get_token(GRAPH_SCOPE).token
    with client(cloud) as http:
        arm = http.get(
            f"/subscriptions/{SUBSCRIPTION}",
            params={"api-version": "2022-12-01"},
            headers={"Authorization": f"Bearer {graph_token}"},
        )
        graph = http.get("/v1.0/users", headers={"Authorization": f"Bearer {graph_token}"})
    assert arm.status_code == 401
    assert arm.json()["error"]["code"] == "InvalidAuthenticationTokenAudience"
    assert "'https://graph.microsoft.com'" in arm.json()["error"]["message"]
    assert graph.status_code == 200


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("not-a-jwt", "Access token validation failure. Invalid signature."),
        (
            identity.issue_token("https://graph.microsoft.com")[0][:-4] + "AAAA",
            "Access token validation failure. Invalid signature.",
        ),
        (
            identity.issue_token("https://graph.microsoft.com", now=time.time() - 7200)[0],
            "Lifetime validation failed, the token is expired.",
        ),
        (identity.issue_token("https://vault.azure.net")[0], "Access token validation failure. Invalid audience."),
    ],
    ids=["garbage", "tampered", "expired", "wrong-audience"],
)
def test_graph_rejects_tokens_it_did_not_issue_or_that_expired(cloud, token, message):
    with client(cloud) as http:
        response = http.get("/v1.0/users", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json()["error"]["message"] == message


def test_expired_arm_token_says_when_it_expired(cloud):
    token, _ = identity.issue_token("https://management.azure.com", now=time.time() - 7200)
    with client(cloud) as http:
        response = http.get(
            "/subscriptions", params={"api-version": "2022-12-01"}, headers={"Authorization": f"Bearer {token}"}
        )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "ExpiredAuthenticationToken"


def test_management_core_audience_is_accepted_by_arm(cloud):
    token, _ = identity.issue_token("https://management.core.windows.net/")
    with client(cloud) as http:
        response = http.get(
            "/subscriptions", params={"api-version": "2022-12-01"}, headers={"Authorization": f"Bearer {token}"}
        )
    assert response.status_code == 200


def test_keep_alive_requests_are_fast(cloud):
    """uvicorn writes headers and body together: no 40 ms delayed-ACK stall on a reused TLS connection."""
    token = DefaultAzureCredential().get_token(GRAPH_SCOPE).token
    with client(cloud) as http:
        headers = {"Authorization": f"Bearer {token}"}
        http.get("/v1.0/users/lee.gu@contoso.com", headers=headers)  # connect + TLS handshake once
        timings = []
        for _ in range(40):
            start = time.perf_counter()
            assert http.get("/v1.0/users/lee.gu@contoso.com", headers=headers).status_code == 200
            timings.append(time.perf_counter() - start)
    timings.sort()
    assert timings[len(timings) // 2] < 0.02, f"median {timings[len(timings) // 2] * 1000:.1f} ms"
