"""The HTTP and Event Grid surface: turns Functions requests into intake and engine calls, and answers as the
README's HTTP contract says (docs/architecture.md follows an incident through it)."""
