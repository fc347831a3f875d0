"""KQL kept as data: named queries with typed parameters, rendered only through one literal builder.

The Log Analytics API has no query parameters, so every entity value that reaches a query goes through
`literals.render`, which validates it by type and emits a Kusto string literal."""

from shared.kql.literals import KqlValueError, ParamType, render
from shared.kql.queries import NamedQuery, QueryError, load_queries, parse_inline

__all__ = ["KqlValueError", "NamedQuery", "ParamType", "QueryError", "load_queries", "parse_inline", "render"]
