"""The console in a real browser: headless Chromium (Debian's package, driven by Playwright, no browser download)
against the local stack. An analyst signs in through the emulated identity platform, approves the VM isolation a
delivery is waiting on, watches the run finish, and rolls it back after confirming; a reader sees the same approval
with its buttons disabled. Screenshots go to RIPOSTE_SCREENSHOTS (default .riposte/screenshots).

Skipped, saying why, when Chromium or Playwright is missing: `.ci/run` installs Chromium (apt), requirements-dev.txt
Playwright."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import CloudHandle
from tests.e2e.conftest import FUNCTION_KEY, ROOT, wait_for_run

CHROMIUM = os.environ.get("RIPOSTE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
SHOTS = Path(os.environ.get("RIPOSTE_SCREENSHOTS", ROOT / ".riposte" / "screenshots"))
SAMPLE = ROOT / "local" / "samples" / "sentinel-incident-compromised-vm.json"

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - requirements-dev.txt pins it
    sync_playwright = None  # type: ignore[assignment]

pytestmark = [
    pytest.mark.skipif(
        CHROMIUM is None, reason="browser tests skipped: chromium is not installed (apt-get install chromium)"
    ),
    pytest.mark.skipif(sync_playwright is None, reason="browser tests skipped: playwright is not installed"),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield launched
        launched.close()


def _page(browser: Browser, problems: list[str]) -> Page:
    # The emulated cloud's certificate comes from the stack's own CA, which this browser profile does not trust.
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return page


def sign_in(page: Page, host_url: str, user: str, roles: tuple[str, ...]) -> None:
    page.goto(f"{host_url}/api/console/#key={FUNCTION_KEY}")
    page.get_by_role("button", name="Sign in with Entra ID").click()
    page.get_by_label("Account").select_option(user)
    for role in ("Riposte.Run", "Riposte.Approve", "Riposte.Read"):
        page.get_by_label(role).set_checked(role in roles)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("navigation", name="Sections")).to_be_visible()
    expect(page.locator("#who")).to_contain_text(user)


def waiting_vm_run(client: httpx.Client) -> dict[str, Any]:
    response = client.post(
        "/api/incidents",
        content=SAMPLE.read_bytes(),
        headers={"content-type": "application/json", "Idempotency-Key": "browser-approval"},
    )
    assert response.status_code in (200, 202), response.text
    location = response.headers["Location"]
    return wait_for_run(
        client, location, until=lambda r: any(s["status"] == "awaiting_approval" for s in r["steps"]), timeout=90
    )


def test_an_analyst_approves_then_rolls_back_in_the_console(
    browser: Browser, host_url: str, cloud: CloudHandle, anonymous: httpx.Client
) -> None:
    machine = httpx.Client(base_url=host_url, headers={"x-functions-key": FUNCTION_KEY}, timeout=30)
    run = waiting_vm_run(machine)
    problems: list[str] = []

    reader = _page(browser, problems)
    sign_in(reader, host_url, "alex.wilber@contoso.com", ("Riposte.Read",))
    reader.goto(f"{host_url}/api/console/#/approvals")
    expect(reader.get_by_role("button", name="Approve")).to_be_disabled()
    expect(reader.get_by_text("Deciding needs the Riposte.Approve role.")).to_be_visible()

    page = _page(browser, problems)
    sign_in(page, host_url, "megan.bowen@contoso.com", ("Riposte.Run", "Riposte.Approve", "Riposte.Read"))
    page.goto(f"{host_url}/api/console/#/approvals")
    panel = page.get_by_role("region", name=re.compile("Approve network.isolate_vm on vm-web-01"))
    expect(panel).to_contain_text(run["id"])
    expect(panel).to_contain_text("What it would change (dry run)")
    page.screenshot(path=str(SHOTS / "console-approval.png"), full_page=False)
    panel.get_by_label("Comment").fill("isolate it, <b>now</b>")
    panel.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("status")).to_contain_text("Approved isolate.0")

    page.goto(f"{host_url}/api/console/#/runs/{run['id']}")
    expect(page.locator("main p").first).to_contain_text("succeeded", timeout=60_000)
    expect(page.locator("svg.timeline")).to_be_visible()
    page.screenshot(path=str(SHOTS / "console-run.png"), full_page=False)

    page.get_by_role("button", name="Roll back this run").click()
    dialog = page.get_by_role("dialog", name="Roll back this run?")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Roll back").click()
    expect(page.locator("main p").first).to_contain_text("rolled back", timeout=60_000)
    page.screenshot(path=str(SHOTS / "console-rolled-back.png"), full_page=False)

    finished = machine.get(f"/api/runs/{run['id']}").json()
    assert finished["status"] == "rolled_back"
    decision = next(s for s in finished["steps"] if s["id"] == "isolate.0")["approval"]["decisions"][0]
    assert decision["by"].startswith("megan.bowen@contoso.com") and decision["comment"] == "isolate it, <b>now</b>"
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems
    served = anonymous.get("/api/console/")
    assert "script-src 'self'" in served.headers["content-security-policy"]
    assert "unsafe-inline" not in served.headers["content-security-policy"]
