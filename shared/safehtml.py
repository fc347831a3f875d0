"""Markup for incident comments that cannot carry untrusted markup (see SafeHtml)."""

from shared.actions.sentinel import SafeHtml

__all__ = ["SafeHtml"]
