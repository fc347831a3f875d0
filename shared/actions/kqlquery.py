"""loganalytics.run_query: any KQL a playbook needs, as a step.

The query is a named query from playbooks/queries/*.kql or text written in the playbook (`kql`, which the playbook
loader accepts only as a constant: it is trusted like the playbook itself, and never computed from the incident).
Either way its values come only through its declared, typed parameters, rendered by the literal builder. The result
is typed (each column's Kusto type, values as the adapter types them), capped in rows and in size, over an explicit
lookback that is also the service-side time range. Queries hold one of Log Analytics' concurrent-query slots, shared
by every instance, in the adapter."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, Field, model_validator

from shared.actions.context import ActionContext
from shared.actions.executor import ActionError
from shared.actions.loganalytics import (
    LOG_ANALYTICS_READER,
    LogsParams,
    LogsResult,
    Lookback,
    lookback_delta,
    queries,
    workspace_of,
)
from shared.actions.registry import enricher
from shared.kql import NamedQuery, QueryError, parse_inline

MAX_ROWS = 1000
MAX_BYTES = 1_000_000
ParameterValue = str | int | list[str] | list[int]


def _inline(text: str | None) -> str | None:
    if text is not None:
        try:
            parse_inline(text)
        except QueryError as exc:
            raise ValueError(str(exc)) from None
    return text


class RunQueryParams(LogsParams):
    query: str | None = Field(None, description="A named query from playbooks/queries")
    kql: Annotated[str | None, AfterValidator(_inline)] = Field(
        None,
        description="Query text written in the playbook, with `// param name: type` declarations",
        json_schema_extra={"playbookText": True},
    )
    parameters: dict[str, ParameterValue] = Field(
        default_factory=dict, description="Values of the query's declared parameters, validated by their types"
    )
    lookback: Lookback = Field("1d", description="The time range, ending now; also the query's {lookback} if declared")
    max_rows: int = Field(100, ge=1, le=MAX_ROWS)
    max_bytes: int = Field(64_000, ge=1_000, le=MAX_BYTES, description="Rows beyond this JSON size are left out")

    @model_validator(mode="after")
    def _one_query(self) -> RunQueryParams:
        if (self.query is None) == (self.kql is None):
            raise ValueError("give exactly one of query (a named query) or kql (query text)")
        return self


class Column(LogsResult):
    name: str
    type: str


class QueryResult(LogsResult):
    query: str
    lookback: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    row_count: int
    truncated: bool
    truncated_reason: str = ""


def _named(params: RunQueryParams) -> NamedQuery:
    if params.kql is not None:
        return parse_inline(params.kql)
    assert params.query is not None
    found = queries().get(params.query)
    if found is None:
        raise ActionError(f"no named query {params.query!r} in playbooks/queries")
    return found


def _size(row: dict[str, Any]) -> int:
    return len(json.dumps(row, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v)))


def capped(rows: list[dict[str, Any]], max_rows: int, max_bytes: int) -> tuple[list[dict[str, Any]], str]:
    """The rows kept within both caps, and why the rest were left out ("" when none were)."""
    kept: list[dict[str, Any]] = []
    size = 0
    for row in rows[:max_rows]:
        size += _size(row)
        if size > max_bytes:
            return kept, f"more than {max_bytes} bytes"
        kept.append(row)
    return kept, (f"more than {max_rows} rows" if len(rows) > max_rows else "")


@enricher(
    "loganalytics.run_query",
    summary="Runs a named query, or KQL written in the playbook, with typed parameters; typed rows, capped (KQL)",
    params=RunQueryParams,
    permissions=LOG_ANALYTICS_READER,
)
async def run_query(ctx: ActionContext, params: RunQueryParams) -> QueryResult:
    query = _named(params)
    values: dict[str, Any] = dict(params.parameters)
    if "lookback" in query.params:
        values.setdefault("lookback", params.lookback)
    # One row more than kept tells a full answer from a cut one; the newline ends any comment on the last line.
    kql = query.render(**values).rstrip().rstrip(";") + f"\n| take {params.max_rows + 1}"
    workspace = workspace_of(ctx, params.workspace_id)
    table = await ctx.azure.logs.query_table(workspace, kql, lookback_delta(params.lookback))
    rows, reason = capped(table.rows, params.max_rows, params.max_bytes)
    return QueryResult(
        query=query.name,
        lookback=params.lookback,
        columns=[Column(name=name, type=kind) for name, kind in table.columns],
        rows=rows,
        row_count=len(rows),
        truncated=bool(reason),
        truncated_reason=reason,
    )
