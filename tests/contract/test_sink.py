"""The webhook sink: what the product posts to a Teams-style incoming webhook is recorded and listed."""

from __future__ import annotations

from typing import Any

import httpx

CARD = {
    "type": "message",
    "attachments": [
        {
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": None,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [{"type": "TextBlock", "text": "Riposte disabled adele.vance@contoso.com", "wrap": True}],
            },
        }
    ],
}


def post(cloud: Any, name: str, **kw: Any) -> httpx.Response:
    with httpx.Client(base_url=cloud.url, verify=cloud.ca_path) as http:
        return http.post(f"/_sink/{name}", **kw)


def test_post_is_answered_like_a_teams_webhook_and_recorded(cloud):
    response = post(cloud, "soc-channel", json=CARD)
    assert response.status_code == 200
    assert response.text == "1"
    assert response.headers["content-type"].startswith("text/plain")
    posts = cloud.admin.get("/sink/soc-channel").json()["value"]
    assert len(posts) == 1
    assert posts[0]["body"] == CARD
    assert posts[0]["contentType"] == "application/json"
    assert posts[0]["name"] == "soc-channel"
    logged = cloud.requests(service="sink")
    assert [(r["method"], r["path"], r["status"]) for r in logged] == [("POST", "/_sink/soc-channel", 200)]


def test_posts_are_listed_per_name_and_cleared(cloud):
    post(cloud, "a", json={"text": "one"})
    post(cloud, "b", json={"text": "two"})
    post(cloud, "a", content=b"plain words", headers={"content-type": "text/plain"})
    assert [p["body"] for p in cloud.admin.get("/sink/a").json()["value"]] == [{"text": "one"}, "plain words"]
    assert len(cloud.admin.get("/sink").json()["value"]) == 3
    assert cloud.admin.delete("/sink/a").status_code == 204
    assert [p["name"] for p in cloud.admin.get("/sink").json()["value"]] == ["b"]
    assert cloud.admin.delete("/sink").status_code == 204
    assert cloud.admin.get("/sink").json()["value"] == []


def test_sink_needs_no_token_but_rejects_an_empty_post(cloud):
    response = post(cloud, "soc-channel", content=b"")
    assert response.status_code == 400
    assert response.text == "Summary or Text is required."
    assert cloud.admin.get("/sink").json()["value"] == []
    assert cloud.requests(service="sink")[0]["status"] == 400


def test_sink_posts_survive_a_tenant_reset(cloud):
    post(cloud, "soc-channel", json=CARD)
    cloud.admin.post("/reset").raise_for_status()
    assert len(cloud.admin.get("/sink").json()["value"]) == 1


def test_faults_apply_to_the_sink(cloud):
    cloud.admin.post("/faults", json={"match": "POST /_sink/*", "status": 429, "retryAfter": 3, "count": 1})
    throttled = post(cloud, "soc-channel", json=CARD)
    assert (throttled.status_code, throttled.headers["retry-after"]) == (429, "3")
    assert post(cloud, "soc-channel", json=CARD).status_code == 200
    assert len(cloud.admin.get("/sink").json()["value"]) == 1  # the throttled post never arrived
