"""Telemetry: JSON log lines that carry the run's context with secrets taken out, and OpenTelemetry spans for each
run, step and API call, exported to Application Insights only when APPLICATIONINSIGHTS_CONNECTION_STRING is set.

- Context: `run_scope` and `step_scope` set context variables that every log record made inside them carries
  (runId, incidentId, playbook, step), whichever logger made it, and open a span. asyncio tasks copy the context
  when they are created, so steps that run concurrently each keep their own step.
- Logs: `configure` gives the root logger's handlers (the Functions worker's, or a stderr one) the JSON formatter, the
  context filter and the redaction filter. One JSON object per line: time, level, logger, message, the context, the
  trace and span ids, extra fields, and the exception.
- Redaction: Authorization values, bearer tokens, function keys (x-functions-key, code=), SAS signatures (sig=),
  AccountKey and other secret-named values, JWT-shaped strings, URL passwords, and the values of the secret settings
  this process holds are replaced by [REDACTED] in messages, arguments, extra fields and exceptions.
- Spans: through opentelemetry-api only, imported on first use (it costs about 60 ms; a cold start need not pay it).
  API call spans come from the SDKs themselves: azure-core's OpenTelemetry tracing (switched on by `configure`) for
  ARM, Sentinel, Log Analytics, Storage and token requests, and kiota's own spans for Microsoft Graph. Without an
  exporter the OpenTelemetry API hands out non-recording spans and nothing leaves the process.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.trace import Span

APPINSIGHTS_SETTING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
TRACER_NAME = "riposte"
REDACTED = "[REDACTED]"

log = logging.getLogger("riposte.telemetry")


# --------------------------------------------------------------------------------------------------- the context


@dataclass(frozen=True)
class LogContext:
    run_id: str | None = None
    incident_id: str | None = None
    playbook: str | None = None
    step: str | None = None

    def fields(self) -> dict[str, str]:
        named = {"runId": self.run_id, "incidentId": self.incident_id, "playbook": self.playbook, "step": self.step}
        return {name: value for name, value in named.items() if value}


_CONTEXT: ContextVar[LogContext] = ContextVar("riposte_log_context", default=LogContext())  # noqa: B039 - frozen


@contextmanager
def log_context(**changes: str | None) -> Iterator[LogContext]:
    """Log records made inside carry these fields (run_id, incident_id, playbook, step); no span."""
    token = _CONTEXT.set(replace(_CONTEXT.get(), **changes))
    try:
        yield _CONTEXT.get()
    finally:
        _CONTEXT.reset(token)


class SpanHandle:
    """What the engine may do with its span: record how the step or run ended. No OpenTelemetry type leaks out."""

    def __init__(self, span: Span) -> None:
        self._span = span

    def finished(self, status: str, reason: str = "", *, failed: bool = False) -> None:
        self._span.set_attribute("riposte.status", status)
        if reason:
            self._span.set_attribute("riposte.reason", redact(reason))
        if failed:
            from opentelemetry.trace import Status, StatusCode

            self._span.set_status(Status(StatusCode.ERROR, redact(reason) or status))


@contextmanager
def span(name: str, attributes: Mapping[str, str | bool | int | float | None] | None = None) -> Iterator[SpanHandle]:
    """A span, current for the duration (API calls made inside nest under it); an exception marks it failed."""
    from opentelemetry import trace

    clean = {key: value for key, value in (attributes or {}).items() if value is not None}
    with trace.get_tracer(TRACER_NAME).start_as_current_span(name, attributes=clean) as current:
        yield SpanHandle(current)


@contextmanager
def run_scope(
    run_id: str, *, incident_id: str | None = None, playbook: str | None = None, dry_run: bool = False
) -> Iterator[SpanHandle]:
    """One worker invocation's work on a run: the `riposte.run` span, and the run's fields on every log record."""
    with (
        log_context(run_id=run_id, incident_id=incident_id, playbook=playbook, step=None),
        span(
            "riposte.run",
            {
                "riposte.run.id": run_id,
                "riposte.incident.id": incident_id,
                "riposte.playbook": playbook,
                "riposte.dry_run": dry_run,
            },
        ) as handle,
    ):
        yield handle


@contextmanager
def step_scope(step_id: str, *, uses: str, kind: str) -> Iterator[SpanHandle]:
    """One step (or one undo): a `riposte.step <action>` (`riposte.undo <action>`) span under the run's, and `step`
    on every log record."""
    with (
        log_context(step=step_id),
        span(
            f"riposte.{'undo' if kind == 'undo' else 'step'} {uses}",
            {"riposte.step.id": step_id, "riposte.step.kind": kind, "riposte.action": uses},
        ) as handle,
    ):
        yield handle


# --------------------------------------------------------------------------------------------------- redaction

_CREDENTIAL_NAMES = (
    r"authorization|proxy-authorization|x-functions-key|x-ms-token-aad-[a-z-]+|x-identity-header|x-ms-client-principal"
    r"|ocp-apim-subscription-key|api[-_]?key|accountkey|sharedaccesskey|primarykey|secondarykey|masterkey"
    r"|instrumentationkey|[a-z_-]*secret|[a-z_-]*password|passwd|pwd|[a-z_-]*token"
)
_CREDENTIAL_NAME = re.compile(rf"(?i){_CREDENTIAL_NAMES}")
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # JWTs first (three base64url parts, the first a JSON header: "eyJ"), wherever they appear.
    (re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), REDACTED),
    # Authorization schemes: "Bearer <token>", "SharedKey account:signature", "Basic <credentials>".
    (
        re.compile(
            r"(?i)\b(bearer|basic|sharedkey|sharedkeylite|sharedaccesssignature)(\s+)(?!\[REDACTED\])[^\s\"',;]+"
        ),
        rf"\1\2{REDACTED}",
    ),
    # Query parameters that are credentials: the function key (code=) and SAS signatures (sig=).
    (re.compile(r"(?i)([?&](?:code|sig|signature|client_secret|access_token|token)=)[^&#;\s\"'<>]+"), rf"\1{REDACTED}"),
    # name: value and name=value pairs whose name says secret (headers, connection strings, JSON, form bodies).
    (
        re.compile(
            rf"(?i)(?<![A-Za-z0-9])({_CREDENTIAL_NAMES})([\"']?\s*[:=]\s*[\"']?)"
            r"(?!\[REDACTED\]|bearer\b|basic\b|sharedkey)([^\s\"'&;,}<>]+)"
        ),
        rf"\1\2{REDACTED}",
    ),
    # The password in a URL's user information: scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]+:)[^/\s@]+@"), rf"\1{REDACTED}@"),
    # Padded base64 of 30+ characters: account keys, function keys (hashes in incidents are hex, never padded).
    (re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{30,}={1,2}(?![A-Za-z0-9+/=])"), REDACTED),
)

# Environment variables whose values are secrets the process holds; redacted wherever they appear verbatim.
_SECRET_ENV = re.compile(r"(?i)(key|secret|password|token|identity_header|connection_?string|webhook_url)$")
_SECRET_ENV_NAMES = ("AzureWebJobsStorage", "IDENTITY_HEADER", "MSI_SECRET")
_MIN_KNOWN_SECRET = 8  # shorter values would redact ordinary words
_known_secrets: tuple[str, ...] = ()


def remember_secrets(env: Mapping[str, str]) -> None:
    """Learns the secret values held in the environment (keys, connection-string keys, the identity header...)."""
    global _known_secrets
    found: set[str] = set(_known_secrets)
    for name, value in env.items():
        if not value or not (name in _SECRET_ENV_NAMES or _SECRET_ENV.search(name)):
            continue
        parts = re.findall(r"(?i)(?:accountkey|sharedaccesskey|key|secret|password)=([^;]+)", value)
        for candidate in parts or [value]:
            if len(candidate) >= _MIN_KNOWN_SECRET and candidate.lower() != "usedevelopmentstorage=true":
                found.add(candidate)
    _known_secrets = tuple(sorted(found, key=len, reverse=True))


def redact(text: str) -> str:
    """The text with every secret or token it contains replaced by [REDACTED]."""
    for secret in _known_secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


_STANDARD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
_CONTEXT_ATTRIBUTES = ("runId", "incidentId", "playbook", "step")


def _redacted_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, Mapping):  # headers and bodies: a value under a secret's name goes whole
        return {
            str(key): REDACTED if _CREDENTIAL_NAME.fullmatch(str(key)) else _redacted_value(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_redacted_value(item) for item in value]
    return redact(str(value))


class RedactSecrets(logging.Filter):
    """Merges the arguments into the message and redacts it, the extra fields and the exception text."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed call; keep the raw message rather than lose the line
            message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = redact(message), None
        for name, value in list(record.__dict__.items()):
            if name not in _STANDARD_ATTRIBUTES and name not in _CONTEXT_ATTRIBUTES and not name.startswith("_"):
                setattr(record, name, _redacted_value(value))
        if record.exc_info and record.exc_info[0] is not None and not getattr(record, "_riposte_redacted_exc", False):
            # Formatters print exc_text when it is set: set it to the redacted traceback.
            record.exc_text = redact(self._formatter.formatException(record.exc_info))
            setattr(record, "_riposte_redacted_exc", True)  # noqa: B010 - LogRecord declares no such attribute
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class AddContext(logging.Filter):
    """Puts the run's fields on the record (an explicit extra= wins), for every handler and exporter to see."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _CONTEXT.get().fields().items():
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, runId, incidentId, playbook, step, trace and span ids,
    extra fields, and the exception (type, message, stack)."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": _iso_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _CONTEXT_ATTRIBUTES:
            value = getattr(record, name, None)
            if value is not None:
                document[name] = value
        document.update(_trace_ids())
        for name, value in record.__dict__.items():
            if name not in _STANDARD_ATTRIBUTES and name not in document and not name.startswith(("_", "otel")):
                document[name] = value  # extra= fields; OpenTelemetry's own otel* ones repeat traceId and spanId
        if record.exc_info and record.exc_info[0] is not None:
            error = record.exc_info[1]
            document["exception"] = {
                "type": record.exc_info[0].__name__,
                "message": redact(str(error)),
                "stack": record.exc_text or redact("".join(traceback.format_exception(*record.exc_info))),
            }
        if record.stack_info:
            document["stack"] = record.stack_info
        return json.dumps(document, ensure_ascii=False, default=str)


def _iso_time(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _trace_ids() -> dict[str, str]:
    """The current span's ids, so a log line can be joined to its trace (only when tracing is already loaded)."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return {}
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"traceId": f"{context.trace_id:032x}", "spanId": f"{context.span_id:016x}"}


# --------------------------------------------------------------------------------------------------- configuration

# azure-core logs each HTTP request at INFO, httpx each Graph request: at a SOC's volume that is noise and cost.
_QUIET_LOGGERS = ("azure.core.pipeline.policies.http_logging_policy", "httpx")
_configured = False
_lock = threading.Lock()


def configure(env: Mapping[str, str] | None = None) -> None:
    """Once per process: JSON logs with context and redaction on the root logger's handlers, the SDKs' spans on,
    and the Azure Monitor exporter when APPLICATIONINSIGHTS_CONNECTION_STRING is set. Idempotent."""
    global _configured
    with _lock:
        if _configured:
            return
        source = os.environ if env is None else env
        remember_secrets(source)
        connection_string = (source.get(APPINSIGHTS_SETTING) or "").strip()
        if connection_string:
            _configure_azure_monitor(connection_string)
        configure_logging()
        enable_sdk_tracing()
        _configured = True


def configure_logging(root: logging.Logger | None = None) -> None:
    """The JSON formatter and both filters on every handler of the root logger (a stderr handler if it has none)."""
    root = root or logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler(sys.stderr))
    if root.getEffectiveLevel() > logging.INFO:
        root.setLevel(logging.INFO)
    for handler in root.handlers:
        if not any(isinstance(f, AddContext) for f in handler.filters):
            handler.addFilter(AddContext())
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(RedactSecrets())
        if _is_exporter(handler):
            continue  # OpenTelemetry's handler sends fields as attributes; it needs no text format
        handler.setFormatter(JsonFormatter())
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def _is_exporter(handler: logging.Handler) -> bool:
    return type(handler).__module__.startswith("opentelemetry")


def enable_sdk_tracing() -> None:
    """azure-core's own OpenTelemetry tracing: a span per SDK operation and per HTTP request, nested under ours."""
    from azure.core.settings import settings

    settings.tracing_enabled = True


def _configure_azure_monitor(connection_string: str) -> None:
    from opentelemetry import trace

    if type(trace.get_tracer_provider()).__module__.startswith("opentelemetry.sdk"):
        # The Functions Python worker configured the distro already (PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY):
        # a second configuration would export everything twice.
        return
    try:
        from azure.monitor.opentelemetry import configure_azure_monitor
    except ImportError:
        log.warning("%s is set, but azure-monitor-opentelemetry is missing: nothing is exported", APPINSIGHTS_SETTING)
        return
    # Logs go to Application Insights through the root logger's OpenTelemetry handler, traces through the
    # tracer provider; both carry the run's fields as custom dimensions.
    configure_azure_monitor(connection_string=connection_string)
