"""function_app.py is a module, which import-linter cannot take as a root package, so its part of the layer rules is
checked here: the deployed bindings import only the Functions library and `shared` (never the CLI, never `local`),
lazy imports inside functions included. The rest of the rules are import-linter contracts in pyproject.toml."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = ("azure.functions", "shared")


def imported_modules(source: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or ""))
    return found


def outside_the_allowed(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if not any(m == a or m.startswith(f"{a}.") for a in ALLOWED))


def test_function_app_imports_only_the_functions_library_and_shared() -> None:
    modules = imported_modules((ROOT / "function_app.py").read_text(encoding="utf-8"))
    assert "shared.api.context" in modules
    assert outside_the_allowed(modules) == []


def test_the_check_sees_a_lazy_import_of_the_cli_or_the_local_stack() -> None:
    source = "import azure.functions\n\ndef handler():\n    from riposte_cli.main import main\n    import local.stack\n"
    assert outside_the_allowed(imported_modules(source)) == ["local.stack", "riposte_cli.main"]
