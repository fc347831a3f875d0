from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="session")
def functions() -> list[Any]:
    """function_app's functions: the library builds them once per app (a second call finds the names taken)."""
    import function_app

    return list(function_app.app.get_functions())
