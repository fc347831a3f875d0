"""Stand-ins for Azure that let Riposte run on one machine. Never deployed (see .funcignore)."""
