"""The fuzz drill of bench/fuzz.py, smaller: every HTTP route over HTTP through the local host, with inputs drawn from
the routes' request shapes and broken (lone surrogates, huge numbers, deep nesting, bytes that are not UTF-8, forged
tokens). No answer may be a 5xx, and no refused input may leave a run in storage. The bench sends 50,000."""

from __future__ import annotations

import os
import re
import sys
from typing import Any

from tests.e2e.conftest import FUNCTION_KEY, ROOT, mint_token

sys.path.insert(0, str(ROOT / "bench"))  # the bench scripts import each other as top-level modules
from fuzz import fuzz

COUNT = int(os.environ.get("RIPOSTE_FUZZ_COUNT", "2000"))
SEED = int(os.environ.get("RIPOSTE_FUZZ_SEED", "0"))


def http_functions() -> set[str]:
    """The names of function_app.py's HTTP functions, read from its source (building the app's functions a second time
    in one process fails, and the unit tests build them)."""
    source = (ROOT / "function_app.py").read_text()
    found = set(re.findall(r'@app\.function_name\("(\w+)"\)\s*@app\.route\(', source))
    assert found, "no HTTP function found in function_app.py"
    return found


def test_no_input_gets_a_5xx_or_leaves_a_run_behind(host_url: str, cloud_server: Any, azurite: str) -> None:
    result = fuzz(
        host_url,
        FUNCTION_KEY,
        lambda **spec: mint_token(cloud_server, **spec),
        COUNT,
        storage_connection=azurite,
        seed=SEED,
    )
    print(result.figures())
    assert result.inputs == COUNT
    assert result.server_errors == 0, "\n".join(result.examples)
    assert result.refused_but_persisted == 0
    # the drill reached every HTTP function and got past the key, the token and intake, as well as being refused by them
    assert set(result.routes) >= http_functions() | {"defender_alert"}
    assert {200, 202, 400, 401, 403, 404, 415} <= set(result.statuses)
    assert result.accepted_submissions > 0 and result.new_runs
