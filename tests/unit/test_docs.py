"""The playbook and operating guides stay true to the code: every action, every playbook field and every setting they
name exists, every action and field is documented, and their links lead somewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from shared.actions.registry import catalogue
from shared.playbook import model
from shared.playbook.loader import bundled_playbooks
from shared.settings import Settings, env_name

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = ROOT / "docs" / "playbooks.md"
OPERATING = ROOT / "docs" / "operating.md"
CLIENT_VARIABLES = {"RIPOSTE_URL", "RIPOSTE_FUNCTION_KEY", "RIPOSTE_TOKEN"}  # read by the CLI, not by the app


def test_every_action_is_in_the_catalogue_and_every_catalogued_action_exists() -> None:
    text = PLAYBOOKS.read_text()
    registered = set(catalogue())
    documented = set(re.findall(r"^\| `([a-z]+\.[a-z_]+)` \|", text, re.MULTILINE))
    assert registered - documented == set(), "add these actions to docs/playbooks.md"
    assert documented - registered == set(), "docs/playbooks.md lists actions that do not exist"


@pytest.mark.parametrize(
    "schema",
    [
        model.Playbook,
        model.Match,
        model.EnrichStep,
        model.ActionStep,
        model.Approval,
        model.Approvers,
        model.WaitUntil,
        model.WriteBack,
        model.ScoreRule,
    ],
)
def test_every_playbook_field_is_documented(schema: type[BaseModel]) -> None:
    text = PLAYBOOKS.read_text()
    for name, field in schema.model_fields.items():
        written = field.alias or name
        assert f"| `{written}` |" in text, f"{schema.__name__}.{written} is not in docs/playbooks.md"


def test_every_bundled_playbook_is_described() -> None:
    text = PLAYBOOKS.read_text()
    for name in bundled_playbooks():
        assert f"[`{name}`](../playbooks/{name}.yaml)" in text


@pytest.mark.parametrize("doc", [PLAYBOOKS, OPERATING], ids=lambda p: p.name)
def test_every_setting_named_exists(doc: Path) -> None:
    known = {env_name(name) for name in Settings.model_fields} | CLIENT_VARIABLES
    text = doc.read_text()
    for prefix in re.findall(r"(RIPOSTE_[A-Z0-9_]+_)\*", text):  # a family: RIPOSTE_AUTH_*
        assert any(name.startswith(prefix) for name in known), f"no setting starts with {prefix}"
    named = set(re.findall(r"RIPOSTE_[A-Z0-9_]*[A-Z0-9](?![A-Z0-9_]*\*)", text))
    assert named - known == set()


@pytest.mark.parametrize("doc", [PLAYBOOKS, OPERATING], ids=lambda p: p.name)
def test_relative_links_lead_to_files_and_anchors(doc: Path) -> None:
    for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text()):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        linked = doc.parent / path if path else doc
        assert linked.exists(), f"{doc.name}: no file {path}"
        if anchor:
            assert anchor in _anchors(linked), f"{doc.name}: no heading for {target}"


def _anchors(markdown: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes."""
    headings = re.findall(r"^#+ (.+)$", markdown.read_text(), re.MULTILINE)
    return {re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}
