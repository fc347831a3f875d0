"""No function over 80 lines anywhere in the repo: a longer one is several steps that want names of their own."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 80


def python_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z", "*.py"], cwd=ROOT, check=True, capture_output=True).stdout
    return [path for path in out.decode().split("\0") if path and not path.startswith("tests/fixtures/")]


def long_functions(source: str, path: str) -> list[str]:
    """`path:line name (N lines)` for each function or method longer than MAX_LINES, decorators not counted."""
    found = []
    for node in ast.walk(ast.parse(source, filename=path)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_LINES:
                found.append(f"{path}:{node.lineno} {node.name} ({length} lines)")
    return found


def violations() -> list[str]:
    found = []
    for path in python_files():
        file = ROOT / path
        if file.is_file():
            found += long_functions(file.read_text(encoding="utf-8"), path)
    return found


def test_no_function_is_over_80_lines() -> None:
    found = violations()
    assert found == [], f"{len(found)} functions over {MAX_LINES} lines:\n" + "\n".join(found)


def function(name: str, lines: int, indent: str = "", prefix: str = "def") -> str:
    body = "".join(f"{indent}    x{i} = {i}\n" for i in range(lines - 1))
    return f"{indent}{prefix} {name}() -> None:\n{body}"


def test_the_check_finds_each_long_function_and_method() -> None:
    source = (
        function("fits", MAX_LINES)
        + function("too_long", MAX_LINES + 1)
        + "class Provider:\n"
        + function("handler", MAX_LINES + 5, indent="    ", prefix="async def")
        + "@decorated\n"
        + function("outer", MAX_LINES)
    )
    assert long_functions(source, "x.py") == [
        f"x.py:{MAX_LINES + 1} too_long ({MAX_LINES + 1} lines)",
        f"x.py:{2 * MAX_LINES + 3} handler ({MAX_LINES + 5} lines)",
    ]


@pytest.mark.parametrize("lines", [2, MAX_LINES])
def test_the_check_passes_a_function_within_the_limit(lines: int) -> None:
    assert long_functions(function("short", lines), "x.py") == []
