"""python -m local.cloud [--port N] [--tenant FILE] [--state-dir DIR]

Serves the emulated Microsoft cloud over HTTPS on 127.0.0.1 (port: --port, else RIPOSTE_CLOUD_PORT, else 7443) and
prints the CA certificate path and the environment a client needs."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from local.cloud.server import run_forever


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m local.cloud", description="Riposte's emulated Microsoft cloud")
    parser.add_argument("--port", type=int, default=None, help="HTTPS port (default: $RIPOSTE_CLOUD_PORT or 7443)")
    parser.add_argument("--tenant", type=Path, default=None, help="tenant YAML (default: the Contoso demo tenant)")
    parser.add_argument("--state-dir", type=Path, default=None, help="where the CA and certificates are written")
    args = parser.parse_args(argv)
    if args.state_dir is not None:
        os.environ["RIPOSTE_STATE_DIR"] = str(args.state_dir)
    run_forever(port=args.port, tenant=args.tenant)


if __name__ == "__main__":
    main()
