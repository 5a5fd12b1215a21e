"""Command line: ``python -m ccs_server serve | migrate | mint-token``."""

from __future__ import annotations

import argparse
import asyncio
import sys

from .auth import mint_token
from .config import ConfigError, Settings
from .errors import StartupError
from .logs import setup_logging


def _run(coro: object) -> None:
    try:
        import uvloop  # faster event loop when available
    except ImportError:
        asyncio.run(coro)  # type: ignore[arg-type]
    else:
        uvloop.run(coro)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m ccs_server",
        description="Reference CCS server (configured from the "
        "environment, see docs/architecture.md)",
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("serve", help="apply migrations and serve HTTP + WebSocket")
    sub.add_parser("migrate", help="apply pending migrations and exit")
    mint = sub.add_parser("mint-token", help="print a signed token for a fixture user")
    mint.add_argument("--user", required=True)
    mint.add_argument("--device")
    mint.add_argument("--ttl", type=int, default=3600, help="seconds (default 3600)")
    mint.add_argument("--admin", action="store_true", help="add role=admin")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"ccs_server: configuration error: {exc}", file=sys.stderr)
        return 2
    if args.cmd == "mint-token":
        print(
            mint_token(
                settings.token_secret,
                args.user,
                args.device,
                args.ttl,
                args.admin,
                settings.token_issuer,
                settings.token_audience,
            )
        )
        return 0
    setup_logging(settings.log_level, settings.log_file)
    try:
        if args.cmd == "migrate":
            from .app import prepare_database

            applied = asyncio.run(prepare_database(settings))
            print("applied: " + (", ".join(applied) or "nothing (up to date)"))
            return 0
        from .app import serve

        _run(serve(settings))
    except StartupError as exc:
        print(f"ccs_server: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
