"""The Log Analytics query API (api.loganalytics.io/v1): real KQL, run by duckdb-kql over the tenant's log tables.

One in-memory DuckDB database per tenant generation, built lazily on the first query from loggen.generate(doc)
(and reused when a reset reloads an unchanged tenant). The tables live in the schema ``store``; each query runs on
its own cursor, where the request's timespan (and, for resource-centric queries, the resource) is applied by
temporary views that shadow the tables, so the translated KQL never changes and its translation can be cached.
Queries run in a worker thread: DuckDB cursors of one database run in parallel, and the event loop stays free.

Answers follow the service: typed columns; datetimes in ISO 8601 with 'Z' and the fraction's trailing zeros dropped
("2021-06-02T00:18:13.317Z", as in Microsoft's recorded examples); dynamic values as JSON text (the v1 API serialises
dynamic columns as strings); 400 BadArgumentError with a SyntaxError or SemanticError inner error for a query that
cannot run; 404 PathNotFoundError for an unknown workspace id.
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import duckdb
import duckdb_kql
from duckdb_kql.types import kusto_type
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from local.cloud import loggen
from local.cloud.errors import LogAnalyticsError
from local.cloud.provider import Provider, route
from local.cloud.router import request_params
from local.cloud.state import Cloud

WORKSPACE_TYPE = "microsoft.operationalinsights/workspaces"
RUNTIME_KEY = "loganalytics"
INVALID_PROPERTIES = "The request had some invalid properties"
TRANSLATION_CACHE_SIZE = 512

# The functions a Sentinel workspace provides, as stored functions over the emulated tables. _GetWatchlist returns
# the latest version of each live item of one watchlist; the service also spreads WatchlistItem's keys into columns
# (bag_unpack), which depends on the data, so here queries read them as WatchlistItem.<key>, which works in both.
SENTINEL_FUNCTIONS = [
    "function _GetWatchlist(watchlistAlias:string) { Watchlist | where TimeGenerated < now()"
    " | where _DTItemType == 'watchlist-item' | where WatchlistAlias == watchlistAlias"
    " | summarize arg_max(_DTTimestamp, _DTItemStatus, LastUpdatedTimeUTC, SearchKey, WatchlistItem) by _DTItemId"
    " | where _DTItemStatus != 'Delete' | project-away _DTTimestamp, _DTItemStatus }"
]

# Kusto column type -> DuckDB column type.
_DUCK_TYPES = {
    "string": "VARCHAR",
    "datetime": "TIMESTAMP",
    "long": "BIGINT",
    "int": "INTEGER",
    "real": "DOUBLE",
    "bool": "BOOLEAN",
    "dynamic": "JSON",
    "guid": "UUID",
    "timespan": "INTERVAL",
    "decimal": "DECIMAL(38,10)",
}
# Kusto types from_json reads natively; every other column is read as text and cast.
_JSON_READ_TYPES = {"long": "BIGINT", "int": "INTEGER", "real": "DOUBLE", "bool": "BOOLEAN", "dynamic": "JSON"}


def bad_argument(inner_code: str, inner_message: str, detail: dict[str, object] | None = None) -> LogAnalyticsError:
    inner: dict[str, object] = {"code": inner_code, "message": inner_message}
    if detail:
        inner["innererror"] = detail
    return LogAnalyticsError(400, "BadArgumentError", INVALID_PROPERTIES, inner)


def semantic_error(code: str, message: str) -> LogAnalyticsError:
    return bad_argument("SemanticError", "A semantic error occurred.", {"code": code, "message": message})


def path_not_found() -> LogAnalyticsError:
    # What the service answers for a workspace id it does not know (also for a workspace *name* passed as the id).
    return LogAnalyticsError(404, "PathNotFoundError", "The requested path does not exist")


def resource_not_found(resource_id: str) -> LogAnalyticsError:
    return LogAnalyticsError(404, "ResourceNotFoundError", f"The resource {resource_id.lower()} was not found")


# --- timespan -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """The request's time range, applied to every table's TimeGenerated (naive UTC, like the stored timestamps)."""

    start: datetime | None = None
    end: datetime | None = None

    def intersect(self, other: Window) -> Window:
        starts = [s for s in (self.start, other.start) if s is not None]
        ends = [e for e in (self.end, other.end) if e is not None]
        return Window(max(starts) if starts else None, min(ends) if ends else None)

    @property
    def unbounded(self) -> bool:
        return self.start is None and self.end is None


_DURATION = re.compile(
    r"^P(?!$)(?:(?P<years>\d+(?:\.\d+)?)Y)?(?:(?P<months>\d+(?:\.\d+)?)M)?(?:(?P<weeks>\d+(?:\.\d+)?)W)?"
    r"(?:(?P<days>\d+(?:\.\d+)?)D)?(?:T(?=\d)(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$",
    re.IGNORECASE,
)
_DURATION_DAYS = {"years": 365.0, "months": 30.0, "weeks": 7.0, "days": 1.0}
_DURATION_SECONDS = {"hours": 3600.0, "minutes": 60.0, "seconds": 1.0}


def parse_duration(text: str) -> timedelta | None:
    match = _DURATION.match(text.strip())
    if not match:
        return None
    parts = {k: float(v) for k, v in match.groupdict().items() if v is not None}
    days = sum(parts.get(k, 0.0) * f for k, f in _DURATION_DAYS.items())
    seconds = sum(parts.get(k, 0.0) * f for k, f in _DURATION_SECONDS.items())
    return timedelta(days=days, seconds=seconds)


def parse_timespan(text: str | None, now: datetime) -> Window:
    """ISO 8601 interval as the API takes it: 'PT12H' (ending now), 'start/end', 'start/PT1H' or 'PT1H/end'."""
    if text is None or not str(text).strip():
        return Window()
    raw = str(text).strip()
    parts = raw.split("/")
    try:
        if len(parts) == 1:
            duration = _required_duration(parts[0])
            return _naive(Window(now - duration, now))
        if len(parts) == 2:
            first, second = parts
            start = loggen.parse_iso(first.strip())
            end = loggen.parse_iso(second.strip())
            if start is not None and end is not None:
                return _naive(Window(start, end))
            if start is not None:
                return _naive(Window(start, start + _required_duration(second)))
            if end is not None:
                return _naive(Window(end - _required_duration(first), end))
    except ValueError:
        pass
    raise bad_argument("InvalidTimespan", f"The timespan '{raw}' is not a valid ISO 8601 duration or interval.")


def _required_duration(text: str) -> timedelta:
    duration = parse_duration(text)
    if duration is None:
        raise ValueError(text)
    return duration


def _naive(window: Window) -> Window:
    def strip(moment: datetime | None) -> datetime | None:
        return None if moment is None else moment.astimezone(UTC).replace(tzinfo=None)

    return Window(strip(window.start), strip(window.end))


# --- the database ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """Resource-centric queries see only rows whose _ResourceId is the resource (or lies under a scope)."""

    resource_id: str
    prefix: bool  # subscription / resource group scope

    def condition(self, columns: list[str]) -> str:
        if "_ResourceId" not in columns:
            return "FALSE"
        target = _sql_string(self.resource_id.lower().rstrip("/"))
        if self.prefix:
            return f"starts_with(lower(\"_ResourceId\"), {target} || '/')"
        return f'lower("_ResourceId") = {target}'


@dataclass
class Result:
    columns: list[tuple[str, str]]
    rows: list[list[Any]]
    elapsed: float
    scanned_rows: int


class LogDatabase:
    """The tables of one tenant generation. Built on first use, from a snapshot of the document."""

    def __init__(self, doc: dict[str, Any], generation: int, key: str = "", anchor: float | None = None) -> None:
        self.doc = doc
        self.generation = generation
        self.key = key
        self.created = time.time()
        # "now" for the generated rows: when the tenant was loaded, like the document's own relative times
        self.anchor = datetime.fromtimestamp(anchor if anchor is not None else self.created, UTC)
        self._lock = threading.Lock()
        self._connection: duckdb.DuckDBPyConnection | None = None
        self.columns: dict[str, list[tuple[str, str]]] = {}
        self.row_counts: dict[str, int] = {}
        self._translations: dict[str, duckdb_kql.TranslationResult] = {}

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection of its own for one query (building the database first if needed): DuckDB runs queries on
        separate cursors in parallel, but the parent connection object itself is not thread-safe."""
        with self._lock:
            if self._connection is None:
                self._connection = self._build()
            return self._connection.cursor()

    def _build(self) -> duckdb.DuckDBPyConnection:
        tables = loggen.generate(self.doc, self.anchor)
        con = duckdb_kql.connect()
        con.execute("CREATE SCHEMA store")
        for table, rows in tables.items():
            columns = loggen.columns_for(table, rows)
            self.columns[table] = columns
            self.row_counts[table] = len(rows)
            ddl = ", ".join(f"{_ident(name)} {_DUCK_TYPES.get(kind, 'VARCHAR')}" for name, kind in columns)
            con.execute(f"CREATE TABLE store.{_ident(table)} ({ddl})")
            if rows:
                _insert(con, table, columns, rows)
        return con

    def schema(self) -> dict[str, list[str]]:
        return {table: [name for name, _ in columns] for table, columns in self.columns.items()}

    def translate(self, query: str) -> duckdb_kql.TranslationResult:
        cached = self._translations.get(query)
        if cached is not None:
            return cached
        translated = duckdb_kql.to_sql(query, schema=self.schema(), allow_write=False, functions=SENTINEL_FUNCTIONS)
        if len(self._translations) >= TRANSLATION_CACHE_SIZE:
            self._translations.clear()
        self._translations[query] = translated
        return translated

    def run(self, query: str, window: Window, scope: Scope | None) -> Result:
        """Runs in a worker thread. Raises LogAnalyticsError for anything the service would reject."""
        cursor = self.cursor()
        started = time.perf_counter()
        try:
            translated = self._checked_translation(query)
            sql = str(translated)
            # Settings are per connection and a cursor is a connection of its own.
            cursor.execute("SET TimeZone = 'UTC'")
            cursor.execute("SET search_path = 'store'")
            referenced = [t for t in self.columns if f'"{t}"' in sql]
            for table in referenced:
                conditions = []
                if window.start is not None:
                    conditions.append(f'"TimeGenerated" >= {_sql_timestamp(window.start)}')
                if window.end is not None:
                    conditions.append(f'"TimeGenerated" <= {_sql_timestamp(window.end)}')
                if scope is not None:
                    conditions.append(scope.condition([name for name, _ in self.columns[table]]))
                if conditions:
                    # Identifiers are quoted and the conditions built from datetimes and quoted literals only.
                    where = " AND ".join(conditions)
                    view = f"CREATE TEMP VIEW {_ident(table)} AS SELECT * FROM store.{_ident(table)} WHERE {where}"  # noqa: S608
                    cursor.execute(view)
            try:
                if translated.parameters:
                    cursor.execute(sql, translated.parameters)
                else:
                    cursor.execute(sql)
                description = cursor.description or []
                fetched = cursor.fetchall()
            except duckdb.Error as exc:
                raise _execution_error(exc) from exc
        finally:
            cursor.close()
        columns = [(str(d[0]), kusto_type(d[1])) for d in description]
        converters = [_CONVERTERS.get(kind, _plain) for _, kind in columns]
        rows = [[convert(value) for convert, value in zip(converters, row, strict=True)] for row in fetched]
        scanned = sum(self.row_counts.get(t, 0) for t in referenced)
        return Result(columns, rows, time.perf_counter() - started, scanned)

    def _checked_translation(self, query: str) -> duckdb_kql.TranslationResult:
        if not query.strip():
            raise bad_argument(
                "SyntaxError",
                "A recognition error occurred in the query.",
                {"code": "SYN0002", "message": "Query could not be parsed: the query is empty"},
            )
        try:
            translated = self.translate(query)
        except duckdb_kql.KqlSyntaxError as exc:
            raise _syntax_error(query, exc) from exc
        except duckdb_kql.KqlUnsupportedError as exc:
            raise semantic_error("UnsupportedByEmulator", f"The local emulator cannot run this query: {exc}") from exc
        except duckdb_kql.KqlSchemaError as exc:
            raise semantic_error("SEM0100", f"Failed to resolve table or column expression named '{exc.name}'") from exc
        except duckdb_kql.KqlError as exc:
            raise semantic_error("SEM0001", str(exc)) from exc
        except (RecursionError, ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
            # duckdb-kql is pre-alpha: a query it chokes on is reported, never turned into a 500.
            message = f"The local emulator could not translate this query: {exc}"
            raise semantic_error("UnsupportedByEmulator", message) from exc
        self._check_table_case(str(translated))
        return translated

    def _check_table_case(self, sql: str) -> None:
        """KQL names are case-sensitive, DuckDB's are not: refuse 'signinlogs' as the service would."""
        exact = set(self.columns)
        lowered = {t.lower(): t for t in self.columns}
        for match in re.finditer(r'(?:FROM|JOIN)\s+"((?:[^"]|"")+)"', sql, re.IGNORECASE):
            name = match.group(1).replace('""', '"')
            if name not in exact and name.lower() in lowered:
                raise semantic_error("SEM0100", f"Failed to resolve table or column expression named '{name}'")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _sql_timestamp(moment: datetime) -> str:
    return f"TIMESTAMP '{moment.strftime('%Y-%m-%d %H:%M:%S.%f')}'"


def _insert(con: duckdb.DuckDBPyConnection, table: str, columns: list[tuple[str, str]], rows: list[loggen.Row]) -> None:
    """One statement per table: the rows go in as one JSON document, typed by from_json, then cast (fast: ~0.1 s
    for thousands of rows, where executemany takes seconds)."""
    spec = {name: _JSON_READ_TYPES.get(kind, "VARCHAR") for name, kind in columns}
    records = [{name: _storable(kind, row.get(name)) for name, kind in columns} for row in rows]
    selects = ", ".join(
        # TRY_CAST: a value a tenant author got wrong (a malformed guid) becomes null rather than failing the table
        f"TRY_CAST({_ident(name)} AS {_DUCK_TYPES.get(kind, 'VARCHAR')})"
        if kind not in _JSON_READ_TYPES
        else _ident(name)
        for name, kind in columns
    )
    # Identifiers are quoted; the rows themselves are a bound parameter.
    source = "(SELECT unnest(from_json(?::JSON, ?), recursive := true))"
    statement = f"INSERT INTO store.{_ident(table)} SELECT {selects} FROM {source}"  # noqa: S608
    con.execute(statement, [json.dumps(records, default=str), json.dumps([spec])])


def _storable(kind: str, value: Any) -> Any:
    """A Python value as from_json should see it for a column of this Kusto type (YAML gives loose types)."""
    if value is None:
        return None
    try:
        if kind == "datetime":
            moment = value if isinstance(value, datetime) else loggen.parse_moment(value, datetime.now(UTC))
            return None if moment is None else moment.astimezone(UTC).replace(tzinfo=None).isoformat()
        if kind in ("long", "int"):
            return int(value)
        if kind == "real":
            return float(value)
        if kind == "bool":
            return value if isinstance(value, bool) else str(value).strip().lower() in ("true", "1", "yes")
        if kind == "timespan" and isinstance(value, timedelta):
            return f"{value.total_seconds()} seconds"
    except (TypeError, ValueError):
        return None
    if kind == "dynamic":
        return value
    if isinstance(value, dict | list):
        return json.dumps(value)
    return value if isinstance(value, str) else str(value)


# --- turning DuckDB values into the service's JSON ------------------------------------------------------------------


def kusto_datetime(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, datetime.min.time())
    if not isinstance(value, datetime):
        return str(value)
    moment: datetime = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += "." + f"{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def kusto_timespan(value: Any) -> str | None:
    """[-][d.]hh:mm:ss[.fffffff], the way Kusto writes a timespan."""
    if value is None:
        return None
    if not isinstance(value, timedelta):
        return str(value)
    ticks = round(value.total_seconds() * 10_000_000)
    sign = "-" if ticks < 0 else ""
    ticks = abs(ticks)
    seconds, fraction = divmod(ticks, 10_000_000)
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    text = f"{sign}{f'{days}.' if days else ''}{hours:02d}:{minutes:02d}:{seconds:02d}"
    return text + (f".{fraction:07d}" if fraction else "")


def kusto_real(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Decimal):
        return float(value)
    return value


def kusto_dynamic(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        return value  # already JSON text
    return json.dumps(value, separators=(",", ":"), default=str)


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "datetime": kusto_datetime,
    "timespan": kusto_timespan,
    "real": kusto_real,
    "dynamic": kusto_dynamic,
    "decimal": lambda v: None if v is None else str(v),
    "guid": lambda v: None if v is None else str(v),
    "bool": lambda v: v,
    "long": lambda v: v,
    "int": lambda v: v,
}


# --- errors from the engine -----------------------------------------------------------------------------------------


def _syntax_error(query: str, exc: duckdb_kql.KqlSyntaxError) -> LogAnalyticsError:
    diagnostic = exc.diagnostics[0] if exc.diagnostics else None
    line = diagnostic.span.line if diagnostic else 1
    pos = diagnostic.span.column if diagnostic else 0
    lines = query.splitlines() or [""]
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    token_match = re.match(r"\S+", text[pos:]) if pos < len(text) else None
    quoted = re.search(r"input '([^']*)'", diagnostic.message) if diagnostic else None
    token = token_match.group(0) if token_match else (quoted.group(1) if quoted else "")
    detail: dict[str, object] = {
        "code": "SYN0002",
        "message": f"Query could not be parsed at '{token}' on line [{line},{pos}]",
        "line": line,
        "pos": pos,
        "token": token,
    }
    return bad_argument("SyntaxError", "A recognition error occurred in the query.", detail)


def _execution_error(exc: duckdb.Error) -> LogAnalyticsError:
    text = str(exc)
    first = text.splitlines()[0] if text else type(exc).__name__
    table = re.search(r"Table with name (\S+) does not exist", text)
    if table:
        return semantic_error("SEM0100", f"Failed to resolve table or column expression named '{table.group(1)}'")
    column = re.search(r'(?:Referenced column|Column) "((?:[^"]|"")+)"', text)
    if isinstance(exc, duckdb.BinderException) and column:
        return semantic_error("SEM0100", f"Failed to resolve scalar expression named '{column.group(1)}'")
    return semantic_error("SEM0001", f"The local emulator could not run this query: {first}")


# --- the HTTP side --------------------------------------------------------------------------------------------------


_ISO_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def fingerprint(snapshot: Any) -> str:
    """What the generated tables depend on, minus what every reload changes anyway (resolved 'now-3h' times, etags):
    two reloads of one tenant share a fingerprint, an edited tenant does not."""

    def stable(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: stable(v) for k, v in node.items() if k != "etag"}
        if isinstance(node, list):
            return [stable(v) for v in node]
        if isinstance(node, str) and _ISO_MOMENT.match(node):
            return "<time>"
        return node

    return json.dumps(stable(snapshot), sort_keys=True, default=str)


# A reset reloads the same tenant: the database built for it moments ago is reused rather than rebuilt (a build takes
# ~0.3 s, and test suites reset before every test). Older than this, it is rebuilt so timestamps stay near "now".
REUSE_SECONDS = 120.0


def database_for(cloud: Cloud) -> LogDatabase:
    """The current generation's database. Called on the event loop, so the check-and-set needs no lock."""
    current = cloud.runtime.get(RUNTIME_KEY)
    if isinstance(current, LogDatabase) and current.generation == cloud.generation:
        return current
    sections = ("tenant", "graph", "arm", "sentinel", "logAnalytics")
    snapshot = copy.deepcopy({key: cloud.doc.get(key) for key in sections if key in cloud.doc})
    key = fingerprint(snapshot)
    recent = _recent_databases.setdefault(id(cloud), {})
    previous = recent.pop(key, None)
    if previous is not None and time.time() - previous.created < REUSE_SECONDS:
        database = previous
        database.generation = cloud.generation
    else:
        database = LogDatabase(snapshot, cloud.generation, key, cloud.loaded_at or time.time())
    recent[key] = database  # most recent last
    while len(recent) > RECENT_DATABASES:
        recent.pop(next(iter(recent)))
    cloud.runtime[RUNTIME_KEY] = database
    return database


# Per Cloud (one per server), outliving runtime resets: the last few tenants' databases by fingerprint, so a test
# that loads an edited tenant does not cost the next one (back on the demo tenant) a rebuild.
RECENT_DATABASES = 3
_recent_databases: dict[int, dict[str, LogDatabase]] = {}


def workspace_ids(doc: dict[str, Any]) -> set[str]:
    ids = {
        str(r.get("properties", {}).get("customerId", "")).lower()
        for r in (doc.get("arm") or {}).get("resources") or []
        if isinstance(r, dict) and str(r.get("type", "")).lower() == WORKSPACE_TYPE
    }
    ids.discard("")
    return ids or {loggen.DEMO_WORKSPACE_ID}  # until the tenant declares its workspace


def known_resource(doc: dict[str, Any], resource_id: str) -> bool:
    wanted = resource_id.lower().rstrip("/")
    arm = doc.get("arm") or {}
    if any(isinstance(r, dict) and str(r.get("id", "")).lower() == wanted for r in arm.get("resources") or []):
        return True
    return any(m.resource_id.lower() == wanted for m in loggen.read_tenant(doc).machines)


def known_scope(doc: dict[str, Any], subscription: str, group: str | None) -> bool:
    arm = doc.get("arm") or {}
    subscriptions = {str(s.get("subscriptionId", "")).lower() for s in arm.get("subscriptions") or []}
    subscriptions.add(loggen.read_tenant(doc).subscription_id.lower())
    if subscription.lower() not in subscriptions:
        return False
    if group is None:
        return True
    groups = {str(g.get("name", "")).lower() for g in arm.get("resourceGroups") or [] if isinstance(g, dict)}
    groups |= {m.resource_group.lower() for m in loggen.read_tenant(doc).machines}
    return group.lower() in groups


def is_workspace_resource(resource_id: str) -> bool:
    return f"/providers/{WORKSPACE_TYPE}/" in resource_id.lower()


def parse_prefer(header: str) -> dict[str, str]:
    prefs: dict[str, str] = {}
    for part in re.split(r"[,;]", header or ""):
        if "=" in part:
            key, value = part.split("=", 1)
            prefs[key.strip().lower()] = value.strip().strip('"').lower()
    return prefs


_RENDER = re.compile(r"\|\s*render\s+(\w+)(.*)$", re.IGNORECASE | re.DOTALL)


def render_info(query: str) -> dict[str, Any] | None:
    """What `Prefer: include-render=true` adds for a query that ends in a render operator."""
    match = _RENDER.search(query.strip())
    if not match:
        return None
    options = match.group(2)
    title = re.search(r"title\s*=\s*(['\"])(.*?)\1", options)
    kind = re.search(r"kind\s*=\s*(\w+)", options)
    return {
        "visualization": match.group(1),
        "title": title.group(2) if title else "",
        "accumulate": False,
        "isQuerySorted": False,
        "kind": kind.group(1) if kind else "default",
        "annotation": "",
        "by": None,
    }


async def run_query(
    cloud: Cloud, query: Any, timespans: list[Any], prefer: dict[str, str], scope: Scope | None = None
) -> dict[str, Any]:
    """The response body of one query, or LogAnalyticsError."""
    if not isinstance(query, str):
        raise bad_argument("QueryValidationError", "The 'query' property is required and must be a string.")
    now = datetime.now(UTC)
    window = Window()
    for timespan in timespans:
        if timespan is not None and not isinstance(timespan, str):
            raise bad_argument("InvalidTimespan", "The timespan must be an ISO 8601 duration or interval string.")
        window = window.intersect(parse_timespan(timespan, now))
    database = database_for(cloud)
    result = await asyncio.to_thread(database.run, query, window, scope)
    body: dict[str, Any] = {
        "tables": [
            {
                "name": "PrimaryResult",
                "columns": [{"name": name, "type": kind} for name, kind in result.columns],
                "rows": result.rows,
            }
        ]
    }
    if prefer.get("include-statistics") == "true":
        body["statistics"] = {
            "query": {
                "executionTime": round(result.elapsed, 7),
                "resourceUsage": {"cpu": {"totalCpu": kusto_timespan(timedelta(seconds=result.elapsed))}},
                "inputDatasetStatistics": {"rows": {"total": result.scanned_rows, "scanned": result.scanned_rows}},
                "datasetStatistics": [{"tableRowCount": len(result.rows), "tableSize": len(json.dumps(result.rows))}],
            }
        }
    if prefer.get("include-render") == "true":
        render = render_info(query)
        if render is not None:
            body["render"] = render
    return body


async def _request_parts(request: Request) -> tuple[Any, list[Any], dict[str, str]]:
    """query, the timespans to intersect (query string and body may both give one), Prefer options."""
    params = request_params(request)
    prefer = parse_prefer(request.headers.get("prefer", ""))
    if request.method == "GET":
        return params.get("query"), [params.get("timespan")], prefer
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else {}
    except ValueError as exc:
        raise bad_argument("InvalidJson", "The request body is not valid JSON.") from exc
    if not isinstance(body, dict):
        raise bad_argument("InvalidJson", "The request body must be a JSON object.")
    return body.get("query"), [params.get("timespan"), body.get("timespan")], prefer


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return JSONResponse(body, status_code=status, media_type="application/json; charset=utf-8")


RESOURCE_QUERY = "/v1/subscriptions/{subscription}/resourceGroups/{group}/providers/{namespace}/{kind}/{name}/query"


class LogAnalyticsProvider(Provider):
    """api.loganalytics.io/v1: queries on a workspace, a resource, a resource group or a subscription, and $batch."""

    service = "loganalytics"

    async def _answer(self, request: Request, scope: Scope | None = None) -> Response:
        query, timespans, prefer = await _request_parts(request)
        return _json(await run_query(self.cloud, query, timespans, prefer, scope))

    @route("GET", "/v1/workspaces/{workspace_id}/query")
    @route("POST", "/v1/workspaces/{workspace_id}/query")
    async def workspace_query(self, request: Request, workspace_id: str) -> Response:
        if workspace_id.lower() not in workspace_ids(self.cloud.doc):
            raise path_not_found()
        return await self._answer(request)

    @route("GET", RESOURCE_QUERY)
    @route("POST", RESOURCE_QUERY)
    async def resource_query(
        self, request: Request, subscription: str, group: str, namespace: str, kind: str, name: str
    ) -> Response:
        resource_id = f"/subscriptions/{subscription}/resourceGroups/{group}/providers/{namespace}/{kind}/{name}"
        if not known_resource(self.cloud.doc, resource_id):
            raise resource_not_found(resource_id)
        # A workspace's own resource id means the whole workspace; any other resource, only its rows.
        scope = None if is_workspace_resource(resource_id) else Scope(resource_id, prefix=False)
        return await self._answer(request, scope)

    @route("GET", "/v1/subscriptions/{subscription}/resourceGroups/{group}/query")
    @route("POST", "/v1/subscriptions/{subscription}/resourceGroups/{group}/query")
    @route("GET", "/v1/subscriptions/{subscription}/query")
    @route("POST", "/v1/subscriptions/{subscription}/query")
    async def scope_query(self, request: Request, subscription: str, group: str | None = None) -> Response:
        scope_id = f"/subscriptions/{subscription}" + (f"/resourceGroups/{group}" if group is not None else "")
        if not known_scope(self.cloud.doc, subscription, group):
            raise resource_not_found(scope_id)
        return await self._answer(request, Scope(scope_id, prefix=True))

    @route("POST", "/v1/$batch")
    async def batch(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError as exc:
            raise bad_argument("InvalidJson", "The request body is not valid JSON.") from exc
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            raise bad_argument("QueryValidationError", "The batch needs a non-empty 'requests' array.")
        return _json({"responses": [await self._batch_item(item) for item in requests]})

    async def _batch_item(self, item: Any) -> dict[str, Any]:
        """One answer of a $batch: its errors are the item's status and body, not the batch's."""
        if not isinstance(item, dict):
            return {"id": None, "status": 400, "body": bad_argument("QueryValidationError", "Invalid request.").body()}
        item_id = item.get("id")
        try:
            workspace = str(item.get("workspace") or "").lower()
            path = str(item.get("path") or "/query").lower()
            if path not in ("/query", f"/workspaces/{workspace}/query") or workspace not in workspace_ids(
                self.cloud.doc
            ):
                raise path_not_found()
            headers = {str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()}
            nested = item.get("body")
            inner: dict[str, Any] = nested if isinstance(nested, dict) else {}
            prefer = parse_prefer(headers.get("prefer", ""))
            result = await run_query(self.cloud, inner.get("query"), [inner.get("timespan")], prefer)
            return {"id": item_id, "status": 200, "body": result}
        except LogAnalyticsError as error:
            return {"id": item_id, "status": error.status, "body": error.body()}
