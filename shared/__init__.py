"""Riposte: the product package, in layers that import only the layers below them:
api -> service -> approvers -> store -> engine -> playbook -> actions -> azure -> {intake, kql, settings, telemetry,
safehtml} -> {armid, perloop}. `make layers` checks it (the import-linter contracts in pyproject.toml)."""
