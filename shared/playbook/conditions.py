"""CEL through an existing library (common-expression-language): no eval, no home-made parser.

Compiled programs are cached by source. Evaluation errors (a missing finding, a type mismatch) raise ConditionError;
callers choose the safe outcome: an action whose `when` cannot be evaluated is skipped, an approval condition that
cannot be evaluated requires approval."""

from __future__ import annotations

from functools import cache
from typing import Any


class ConditionError(ValueError):
    pass


@cache
def compile_expression(source: str) -> Any:
    import cel  # lazy: only the engine and the playbook loader need CEL, not a cold start

    try:
        return cel.compile(source)
    except ValueError as exc:
        raise ConditionError(f"cannot parse {source!r}: {str(exc).splitlines()[0]}") from None


def evaluate(source: str, variables: dict[str, Any]) -> Any:
    program = compile_expression(source)
    try:
        return program.execute(variables)
    except Exception as exc:  # the library raises KeyError/TypeError/ValueError/RuntimeError for runtime errors
        raise ConditionError(f"{source!r}: {type(exc).__name__}: {exc}") from None


def is_true(source: str | None, variables: dict[str, Any]) -> bool:
    if source is None:
        return True
    value = evaluate(source, variables)
    if not isinstance(value, bool):
        raise ConditionError(f"{source!r} gave {value!r}, not true or false")
    return value
