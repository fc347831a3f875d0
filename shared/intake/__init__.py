"""Intake: every payload dialect into one canonical `Incident`. Pure functions, no I/O."""

from shared.intake.body import check_json_value, decode_json_body
from shared.intake.dialects import detect, normalise
from shared.intake.errors import IntakeError
from shared.intake.events import Delivery, parse_delivery
from shared.intake.model import Dialect, Envelope, Incident, Severity

__all__ = [
    "Delivery",
    "Dialect",
    "Envelope",
    "Incident",
    "IntakeError",
    "Severity",
    "check_json_value",
    "decode_json_body",
    "detect",
    "normalise",
    "parse_delivery",
]
