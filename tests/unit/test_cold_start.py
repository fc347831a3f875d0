"""Importing function_app (what a cold start pays) must not import any Azure SDK client: those load lazily."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = (
    "msgraph",
    "kiota",
    "azure.identity",
    "azure.mgmt",
    "azure.monitor",
    "azure.data.tables",
    "azure.storage",
    "azure.core",
    "aiohttp",
    "msal",
)


def test_function_app_import_loads_no_sdk() -> None:
    code = "import json, sys, function_app; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = json.loads(result.stdout)
    offenders = [m for m in loaded if m.startswith(HEAVY)]
    assert offenders == []
    assert "function_app" in loaded and "shared.intake" in loaded
