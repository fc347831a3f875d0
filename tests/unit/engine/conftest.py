"""The CEL environment is built once per process (about half a second); build it before these tests, so that each
test's time is the engine's own."""

from __future__ import annotations

import pytest

from shared.playbook.conditions import is_true


@pytest.fixture(scope="session", autouse=True)
def cel_ready() -> None:
    assert is_true("1 == 1", {})
