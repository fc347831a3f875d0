"""python -m local.cloud [--port N] [--tenant FILE]"""

from __future__ import annotations

import argparse
from pathlib import Path

from local.cloud.server import run_forever

parser = argparse.ArgumentParser(prog="python -m local.cloud", description="Riposte's emulated Microsoft cloud")
parser.add_argument("--port", type=int, default=None)
parser.add_argument("--tenant", type=Path, default=None)
args = parser.parse_args()
run_forever(port=args.port, tenant=args.tenant)
