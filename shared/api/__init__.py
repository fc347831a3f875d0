"""The HTTP and Event Grid surface: turns Functions requests into intake/engine calls and answers per DESIGN.md §3."""
