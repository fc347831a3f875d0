"""Enrichers and responders. Each module declares actions for one provider; see registry.py."""
