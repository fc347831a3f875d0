"""The request shapes of function_app.py's HTTP routes as hypothesis strategies, then broken (bench/fuzz.py sends them).

There is no OpenAPI document to derive them from yet, so each route's shape is written here: method, path parameters,
query, headers and body, with the bundled samples as the valid bodies that mutations start from."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from fuzz import NO_PLAYBOOK, PLAYBOOKS, Request
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as seeded
from hypothesis import strategies as st

Draw = Callable[[st.SearchStrategy[Any]], Any]


class Raw:
    """JSON text placed as is: numbers Python cannot print, NaN, nesting too deep to build as objects."""

    def __init__(self, text: str) -> None:
        self.text = text


SPECIAL_TEXT = [
    "\ud800", "x\udfffy", "\udbff\udbff", "\N{ARABIC-INDIC DIGIT SEVEN}d", "' or 1==1 //", "7d) | union *",
    "../../x", "\x00", "\u202etxt", "", " ", "null", "eventgrid.azure.net", "High", "Informational", "Account",
    "/subscriptions/x/resourceGroups/y/providers/Microsoft.Compute/virtualMachines/z", "a" * 5000,
    "2026-13-45T99:99:99Z", "2026-01-01T00:00:00.12345678901Z", "\ufeff", "%00", "{}", "[]", "\N{PILE OF POO}" * 50,
]  # fmt: skip
RAW_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1E400", "-0", "1e-400", "0.0e0"]
SURROGATE = st.characters(categories=["Cs"])
TEXT = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=st.one_of(SURROGATE, st.characters()), min_size=1, max_size=8),
    st.sampled_from(SPECIAL_TEXT),
)
NUMBER = st.one_of(
    st.integers(),
    st.integers(min_value=2**63 - 2, max_value=2**64 + 2),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=4290, max_value=6000).map(lambda n: Raw("9" * n)),  # past int()'s 4,300 digits
    st.sampled_from(RAW_NUMBERS).map(Raw),
)
DEEP = st.integers(min_value=20, max_value=120_000).map(lambda n: Raw("[" * n + "]" * n))
SCALAR = st.one_of(st.none(), st.booleans(), NUMBER, TEXT)
JSON_VALUE = st.recursive(
    SCALAR, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4), max_leaves=10
)
EVIL = st.one_of(SCALAR, JSON_VALUE, DEEP)


# --- JSON text -----------------------------------------------------------------------------------------------------


def encode(value: Any) -> str:
    """json.dumps that also writes Raw text; surrogates come out as \\udXXX escapes, as a hostile client sends them."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{encode(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(encode(v) for v in value) + "]"
    return json.dumps(value)


HOW = st.sampled_from(["json"] * 8 + ["raw utf-8", "truncated", "utf-16", "bom", "binary", "empty"])
BINARY = st.binary(max_size=64)
BLANK = st.sampled_from([b"", b"   ", b"\n"])
INDEX = st.integers(min_value=0, max_value=1 << 30)
STEPS = st.integers(min_value=0, max_value=3)
DEPTH_STEP = st.integers(min_value=0, max_value=4)
BOOL = st.booleans()


def body_bytes(draw: Draw, document: Any) -> bytes:
    """The document as JSON, mostly well formed; sometimes not UTF-8, truncated, UTF-16, too large, or not JSON."""
    if draw(INDEX) % 400 == 0:
        return b"[" + b"1," * 600_000 + b"1]"  # past the 1 MiB body limit (rarely: it is 1.2 MB to send)
    text = encode(document)
    how = draw(HOW)
    if how == "raw utf-8":
        return json.dumps(document if not _has_raw(document) else "x", ensure_ascii=False).encode(
            "utf-8", "surrogatepass"
        )  # lone surrogates as CESU-8 bytes: not UTF-8
    if how == "truncated":
        return text[: draw(INDEX) % max(1, len(text))].encode()
    if how == "utf-16":
        return text.encode("utf-16", "surrogatepass")
    if how == "bom":
        return b"\xef\xbb\xbf" + text.encode()
    if how == "binary":
        return bytes(draw(BINARY))
    if how == "empty":
        return bytes(draw(BLANK))
    return text.encode()


def _has_raw(value: Any) -> bool:
    if isinstance(value, Raw):
        return True
    if isinstance(value, dict):
        return any(_has_raw(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_raw(v) for v in value)
    return False


def mutated(draw: Draw, templates: list[Any]) -> Any:
    """A template with up to three of its values replaced, removed or added to, anywhere in it."""
    document = copy.deepcopy(templates[draw(INDEX) % len(templates)])
    for _ in range(draw(STEPS)):
        parent: Any = None
        key: Any = None
        node = document
        while isinstance(node, dict | list) and node and draw(DEPTH_STEP) > 0:
            keys = list(node) if isinstance(node, dict) else range(len(node))
            parent, key = node, keys[draw(INDEX) % len(keys)]
            node = node[key]
        if parent is None:
            if isinstance(document, dict):
                document[draw(TEXT)] = draw(EVIL)
            continue
        if isinstance(parent, dict) and draw(BOOL) and draw(BOOL):
            del parent[key]
        else:
            parent[key] = draw(EVIL)
    return document


# --- the routes ----------------------------------------------------------------------------------------------------

KEY_MODE = st.sampled_from(["header"] * 6 + ["query", "none", "wrong"])
HEADER_BYTES = st.binary(max_size=80).map(lambda b: _header_safe(b))
TOKEN_BYTES = st.binary(min_size=1, max_size=200).map(lambda b: _header_safe(b))
PLAYBOOK = st.sampled_from(PLAYBOOKS)
NAME = st.one_of(PLAYBOOK, TEXT.filter(bool))
SUBMIT_QUERY = st.sampled_from(["no playbook", "dry run", "dry run of a playbook"])
VERB = st.sampled_from(["approve", "reject"])
ORIGIN = st.one_of(st.just(b"eventgrid.azure.net"), HEADER_BYTES)
FUNCTION_NAME = st.one_of(st.just("defender_alert"), TEXT.map(lambda t: _printable(t)))
NOT_AN_OBJECT = st.one_of(SCALAR, st.lists(SCALAR, max_size=3))
AEG_TYPE = st.sampled_from([b"Notification", b"SubscriptionValidation"])
QUERY_VALUE = st.one_of(TEXT, NUMBER.map(lambda n: n.text if isinstance(n, Raw) else str(n))).map(
    lambda t: _printable(t)
)
DECISION = st.one_of(st.fixed_dictionaries({}, optional={"step": EVIL, "comment": EVIL}), EVIL)
ENTITIES = st.fixed_dictionaries(
    {"entities": st.one_of(st.lists(JSON_VALUE, max_size=4), EVIL)},
    optional={"title": EVIL, "severity": st.one_of(st.sampled_from(["High", "Low"]), EVIL)},
)
DRY_RUN_VALUE = st.one_of(st.just(True), st.just(True), EVIL)
WITH_BODY = st.sampled_from([True, True, True, False])
MEDIA_TYPES = st.sampled_from(
    ["application/json"] * 6
    + ["application/json; charset=utf-8", "application/cloudevents+json", "application/cloudevents-batch+json"]
    + ["text/plain", "", "application/x-www-form-urlencoded", "application/evil+json; charset=latin-1"]
).map(str.encode)
CONTENT_TYPE = st.one_of(MEDIA_TYPES, MEDIA_TYPES, MEDIA_TYPES, HEADER_BYTES)


class Shapes:
    """Every HTTP route's requests, from callers of every kind; strategies are built once (building is the slow
    part of hypothesis), and `generate` draws a chunk of requests from them."""

    def __init__(self, function_key: str, tokens: dict[str, str], templates: dict[str, list[Any]]) -> None:
        self.function_key = function_key.encode()
        self.tokens = {name: f"Bearer {token}".encode() for name, token in tokens.items()}
        others = [name for name in tokens if name != "valid"] + ["none", "garbage", "basic", "principal"]
        self.token_mode = st.sampled_from(["valid"] * len(others) + others)  # half get past the token
        self.incident_templates = templates["incidents"]
        self.event_templates = templates["events"]
        self.grid_event = next(t for t in templates["events"] if isinstance(t, list))[0]  # Event Grid schema
        self.known_runs: list[str] = []  # dry runs the drill started: approve, reject and rollback get real ids too
        self.strategy = st.one_of(
            *[st.composite(route)(self) for route, weight in _ROUTES for _ in range(weight)]  # type: ignore[arg-type]
        )

    def generate(self, count: int, seed: int) -> list[Request]:
        """`count` requests, reproducibly from `seed` (one hypothesis run, generation only: no shrinking)."""
        out: list[Request] = []

        @seeded(seed)
        @settings(
            max_examples=count,
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(self.strategy)
        def draw_one(request: Request) -> None:
            out.append(request)

        while len(out) < count:  # hypothesis may stop a run early when it finds no new examples
            draw_one()
        return out[:count]

    def caller(self, draw: Draw) -> tuple[dict[str, bytes], dict[str, str]]:
        """Headers and query for who calls: the key (or not, or a wrong one, or in the query) and a token or not."""
        headers: dict[str, bytes] = {}
        params: dict[str, str] = {}
        key = draw(KEY_MODE)
        if key == "header":
            headers["x-functions-key"] = self.function_key
        elif key == "query":
            params["code"] = self.function_key.decode()
        elif key == "wrong":
            headers["x-functions-key"] = draw(HEADER_BYTES)
        mode = draw(self.token_mode)
        if mode in self.tokens:
            headers["authorization"] = self.tokens[mode]
        elif mode == "garbage":
            headers["authorization"] = b"Bearer " + draw(TOKEN_BYTES)
        elif mode == "basic":
            headers["authorization"] = b"Basic dXNlcjpwYXNz"
        elif mode == "principal":
            headers["x-ms-client-principal"] = draw(TOKEN_BYTES)
        return headers, params

    def incident_body(self, draw: Draw) -> Any:
        return mutated(draw, self.incident_templates) if draw(WITH_BODY) else draw(EVIL)

    def run_id(self, draw: Draw) -> str:
        pick = draw(INDEX) % 3
        if pick == 0 and self.known_runs:
            return str(self.known_runs[draw(INDEX) % len(self.known_runs)])
        return str(draw(TEXT)) if pick == 1 else f"{draw(INDEX):08x}-0000-4000-8000-000000000000"


def incidents(draw: Draw, shapes: Shapes) -> Request:
    headers, params = shapes.caller(draw)
    query = draw(SUBMIT_QUERY)  # never a run that acts: a filter that matches nothing, or a dry run
    params |= {"playbook": NO_PLAYBOOK} if query == "no playbook" else {"dryRun": "true"}
    if query == "dry run of a playbook":
        params["playbook"] = draw(PLAYBOOK)
    if draw(BOOL):
        headers["idempotency-key"] = draw(HEADER_BYTES)
    headers["content-type"] = draw(CONTENT_TYPE)
    body = body_bytes(draw, shapes.incident_body(draw))
    return Request("incidents", "POST", "/api/incidents", params, headers, body)


def events(draw: Draw, shapes: Shapes) -> Request:
    headers, params = shapes.caller(draw)
    params["dryRun"] = "true"  # the events route starts dry runs only when the query asks
    event = mutated(draw, shapes.event_templates)
    body = event if draw(WITH_BODY) else draw(EVIL)
    if isinstance(body, dict) and draw(BOOL):
        body = [body, mutated(draw, shapes.event_templates)]  # a batch
    headers["content-type"] = draw(CONTENT_TYPE)
    return Request("events", "POST", "/api/events", params, headers, body_bytes(draw, body))


def events_preflight(draw: Draw, shapes: Shapes) -> Request:
    headers, params = shapes.caller(draw)
    headers["webhook-request-origin"] = draw(ORIGIN)
    if draw(BOOL):
        headers["webhook-request-rate"] = draw(HEADER_BYTES)
    return Request("events", "OPTIONS", "/api/events", params, headers)


def event_grid_webhook(draw: Draw, shapes: Shapes) -> Request:
    """The native Event Grid trigger has no dry run: an event sent to it never holds a valid alert."""
    headers, params = shapes.caller(draw)
    params["functionName"] = draw(FUNCTION_NAME)
    event = copy.deepcopy(shapes.grid_event)
    event["data"]["properties"] = draw(NOT_AN_OBJECT)
    headers["aeg-event-type"] = draw(AEG_TYPE)
    body = mutated(draw, [[event]]) if draw(WITH_BODY) else draw(EVIL)
    return Request("defender_alert", "POST", "/runtime/webhooks/eventgrid", params, headers, body_bytes(draw, body))


def run_status(draw: Draw, shapes: Shapes) -> Request:
    headers, params = shapes.caller(draw)
    return Request("run_status", "GET", f"/api/runs/{_segment(shapes.run_id(draw))}", params, headers)


def runs(draw: Draw, shapes: Shapes) -> Request:
    headers, params = shapes.caller(draw)
    for name in ("limit", "status"):
        if draw(BOOL):
            params[name] = draw(QUERY_VALUE)
    return Request("runs", "GET", "/api/runs", params, headers)


def decide(draw: Draw, shapes: Shapes) -> Request:
    headers, params = shapes.caller(draw)
    verb = draw(VERB)
    headers["content-type"] = draw(CONTENT_TYPE)
    body = body_bytes(draw, draw(DECISION)) if draw(WITH_BODY) else None
    return Request(verb, "POST", f"/api/runs/{_segment(shapes.run_id(draw))}/{verb}", params, headers, body)


def rollback(draw: Draw, shapes: Shapes) -> Request:
    headers, params = shapes.caller(draw)
    return Request("rollback", "POST", f"/api/runs/{_segment(shapes.run_id(draw))}/rollback", params, headers)


def playbooks(draw: Draw, shapes: Shapes) -> Request:
    headers, params = shapes.caller(draw)
    return Request("playbooks", "GET", "/api/playbooks", params, headers)


def manual_run(draw: Draw, shapes: Shapes) -> Request:
    headers, params = shapes.caller(draw)
    pick = draw(INDEX) % 3
    body: Any = draw(EVIL) if pick == 0 else draw(ENTITIES) if pick == 1 else {"incident": shapes.incident_body(draw)}
    if isinstance(body, dict):
        body["dryRun"] = draw(DRY_RUN_VALUE)
    name = draw(NAME)
    if name in PLAYBOOKS and not (isinstance(body, dict) and body.get("dryRun") is True):
        name = NO_PLAYBOOK  # never a run that acts
    headers["content-type"] = draw(CONTENT_TYPE)
    return Request(
        "manual_run", "POST", f"/api/playbooks/{_segment(name)}/runs", params, headers, body_bytes(draw, body)
    )


def health(draw: Draw, shapes: Shapes) -> Request:
    headers, params = shapes.caller(draw)
    return Request("health", "GET", "/api/health", params, headers)


def openapi(draw: Draw, shapes: Shapes) -> Request:
    headers, params = shapes.caller(draw)
    if draw(BOOL):
        params[_printable(draw(TEXT)) or "x"] = draw(QUERY_VALUE)
    return Request("openapi", draw(st.sampled_from(["GET", "GET", "HEAD"])), "/api/openapi.json", params, headers)


CONSOLE_FILES = [
    "",
    "index.html",
    "config.json",
    "main.js",
    "style.css",
    "../function_app.py",
    "..%2F..%2Fhost.json",
    "%00",
    "a/b/c",
]


def console(draw: Draw, shapes: Shapes) -> Request:
    """Anonymous static files: a real one, a traversal attempt or any text as the catch-all path."""
    headers, params = shapes.caller(draw)
    path = draw(st.sampled_from(CONSOLE_FILES)) if draw(BOOL) else _segment(draw(TEXT))
    return Request("console", "GET", f"/api/console/{path}", params, headers)


_ROUTES: list[tuple[Callable[[Draw, Shapes], Request], int]] = [
    (incidents, 4),
    (events, 2),
    (events_preflight, 1),
    (event_grid_webhook, 1),
    (run_status, 1),
    (runs, 1),
    (decide, 2),
    (rollback, 1),
    (playbooks, 1),
    (manual_run, 3),
    (health, 1),
    (openapi, 1),
    (console, 1),
]


def _header_safe(value: bytes) -> bytes:
    """Header bytes the HTTP client will send: no control characters, no surrounding whitespace."""
    return bytes(b for b in value if b >= 0x20 and b != 0x7F).strip() or b"x"


def _printable(value: str) -> str:
    return value.encode("utf-8", "surrogatepass").decode("latin-1")


def _segment(value: str) -> str:
    """A path parameter, percent-encoded byte for byte (lone surrogates as their CESU-8 bytes)."""
    return quote(value, safe="", errors="surrogatepass") or "x"
