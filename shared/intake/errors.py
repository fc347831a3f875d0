"""The one error type intake raises; the HTTP layer turns it into {"error": {"code", "message", "target"}}."""

from __future__ import annotations

from typing import Any


class IntakeError(ValueError):
    def __init__(self, code: str, message: str, target: str = "", status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.target = target
        self.status = status

    def as_body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "target": self.target}}


def path_to_target(path: tuple[str | int, ...] | list[str | int]) -> str:
    """('object', 'properties', 'relatedEntities', 3) -> 'object.properties.relatedEntities[3]'."""
    target = ""
    for part in path:
        if isinstance(part, int):
            target += f"[{part}]"
        else:
            target += f".{part}" if target else str(part)
    return target
