"""Riposte: the product package. Layers import only to their right: intake -> engine -> actions -> azure adapters."""
