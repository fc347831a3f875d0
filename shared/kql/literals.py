"""The one way a value becomes part of KQL: validated by its declared type, then emitted as a Kusto literal.

Kusto string literals (learn.microsoft.com/kusto/query/scalar-data-types/string): in a single-quoted literal `\\` and
`'` must be escaped, and so must line breaks, which would otherwise end the literal. Everything else, unicode
look-alikes of quotes included, is inert inside a literal. Typed values (UPN, GUID, IP, hostname, hash) are also
checked against their format, so a value that is not what the query expects is refused before any query runs.
"""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from typing import Any


class KqlValueError(ValueError):
    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param


class ParamType(StrEnum):
    UPN = "upn"
    GUID = "guid"
    IP = "ip"
    HOSTNAME = "hostname"
    HASH = "hash"
    TEXT = "text"
    TIMESPAN = "timespan"
    INT = "int"


# Entra UPN local parts allow letters, digits and ' . - _ ! # ^ ~ ; the domain is a DNS name (IDN allowed).
_UPN = re.compile(r"^[\w.'!#^~+-]{1,113}@[\w-]+(\.[\w-]+)+$", re.UNICODE)
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}))*\.?$")
_HASH = re.compile(r"^([0-9a-fA-F]{32}|[0-9a-fA-F]{40}|[0-9a-fA-F]{64})$")  # MD5, SHA1, SHA256
_TIMESPAN = re.compile(r"^[0-9]{1,6}(d|h|m|s|ms)\Z")  # [0-9]: \d takes any script's digits
_MAX_TEXT = 4096
_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def string_literal(value: str) -> str:
    """A single-quoted Kusto string literal whose content is exactly `value`."""
    if any(ord(c) < 0x20 and c not in "\n\r\t" for c in value) or "\x7f" in value:
        raise KqlValueError("value", "control characters are not allowed")
    return "'" + "".join(_ESCAPES.get(c, c) for c in value) + "'"


def _check(param: str, kind: ParamType, value: Any) -> str:
    if kind is ParamType.INT:
        if isinstance(value, bool) or not isinstance(value, int):
            raise KqlValueError(param, "expected an integer")
        return str(value)
    if not isinstance(value, str):
        raise KqlValueError(param, f"expected a string for a {kind.value}")
    text = value.strip()
    if kind is ParamType.UPN and not _UPN.match(text):
        raise KqlValueError(param, "not a user principal name")
    if kind is ParamType.GUID and not _GUID.match(text):
        raise KqlValueError(param, "not a GUID")
    if kind is ParamType.IP:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise KqlValueError(param, "not an IPv4 or IPv6 address") from None
        # Python accepts an IPv6 zone of any text ("fe80::1%<anything>"); no log records one, so it is refused.
        if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
            raise KqlValueError(param, "an IPv6 address with a zone (%...) is not accepted")
        # Logs write an IPv4 address dotted, also when a payload gives it IPv4-mapped (::ffff:1.2.3.4).
        mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
        text = str(mapped or address)
    if kind is ParamType.HOSTNAME and not _HOSTNAME.match(text):
        raise KqlValueError(param, "not a host name")
    if kind is ParamType.HASH:
        if not _HASH.match(text):
            raise KqlValueError(param, "not an MD5, SHA1 or SHA256 hex digest")
        text = text.lower()
    if kind is ParamType.TIMESPAN:
        if not _TIMESPAN.match(text):
            raise KqlValueError(param, "not a timespan such as 30m, 12h or 7d")
        return text  # a validated timespan literal is emitted bare: ago(7d)
    if kind is ParamType.TEXT:
        text = value  # free text is kept exactly, whitespace included
        if len(text) > _MAX_TEXT:
            raise KqlValueError(param, f"longer than {_MAX_TEXT} characters")
    try:
        return string_literal(text)
    except KqlValueError:
        raise KqlValueError(param, "control characters are not allowed") from None


def render(param: str, kind: ParamType | str, value: Any) -> str:
    """The KQL text for one parameter value: a validated literal, or a list of them as dynamic([...])."""
    kind = ParamType(kind.removeprefix("list[").removesuffix("]")) if isinstance(kind, str) else kind
    if isinstance(value, list | tuple):
        if not value:
            raise KqlValueError(param, "an empty list")
        return "dynamic([" + ", ".join(_check(param, kind, v) for v in value) + "])"
    return _check(param, kind, value)
