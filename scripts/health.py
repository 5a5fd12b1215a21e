"""Check that PostgreSQL, Redis and the server under test are reachable and healthy.

Usage: ``python scripts/health.py [--timeout 3]`` (``make health``)

Prints one line per service, ``OK``, ``FAIL`` with the next step to take, or ``SKIP``:

    OK   PostgreSQL 127.0.0.1:5432/ccs (15.14)
    FAIL Redis 127.0.0.1:6379: connection refused — start it with: redis-server --daemonize yes ...
    SKIP Server: SUT_URL not set — the kit starts its own reference server for each run

Reads ``DATABASE_URL`` (from ``.ccs-env`` when ``scripts/ensure_services.sh`` wrote one, else
``postgresql://postgres@127.0.0.1:5432/ccs``), ``REDIS_URL`` (default ``redis://127.0.0.1:6379/0``)
and ``SUT_URL`` (optional). Exit code 0 only when every required service is OK (the server is
required only when ``SUT_URL`` is set), else 1.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from ccskit.config import DEFAULT_DATABASE_URL  # importing it also loads .ccs-env

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
PG_START = (
    "start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main "
    "start (or `make env-up`)"
)
REDIS_START = (
    "start it with: redis-server --daemonize yes --bind 127.0.0.1 --port {port} "
    "--save '' --appendonly no (or `make env-up`)"
)


@dataclass
class Result:
    state: str  # "OK", "FAIL" or "SKIP"
    text: str

    def line(self) -> str:
        return f"{self.state:<4} {self.text}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _reason(message: str) -> str:
    """The cause in a newcomer's words: libpq and redis-py bury it in long sentences."""
    lowered = message.lower()
    if "refused" in lowered:
        return "connection refused"
    if "timeout" in lowered or "timed out" in lowered:
        return "no answer (timed out)"
    if "name or service not known" in lowered or "nodename nor servname" in lowered:
        return "unknown host name"
    return message


def check_postgres(url: str, timeout: float) -> Result:
    parts = urlsplit(url)
    where = f"{parts.hostname or 'local socket'}:{parts.port or 5432}{parts.path or ''}"
    try:
        import psycopg2
    except ImportError:
        return Result(
            "FAIL", f"PostgreSQL {where}: psycopg2 missing — run: pip install -r requirements.txt"
        )
    try:
        conn = psycopg2.connect(url, connect_timeout=max(1, round(timeout)))
    except psycopg2.OperationalError as exc:
        return Result("FAIL", f"PostgreSQL {where}: {_pg_hint(_first_line(exc), parts.path)}")
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW server_version")
            row = cur.fetchone()
        version = str(row[0]).split()[0] if row else "?"
    finally:
        conn.close()
    return Result("OK", f"PostgreSQL {where} ({version})")


def _pg_hint(message: str, path: str) -> str:
    # libpq repeats the address we already print: keep only the cause.
    message = re.sub(r"^connection to server at .*? failed:\s*(FATAL:\s*)?", "", message)
    if "does not exist" in message and "database" in message:
        name = path.lstrip("/") or "ccs"
        return (
            f"{message} — create it with: createdb -h 127.0.0.1 -U postgres {name} "
            "(or run scripts/ensure_services.sh)"
        )
    if "authentication" in message or "password" in message or "role" in message:
        return f"{message} — check the user and password in DATABASE_URL"
    reason = _reason(message)
    if reason in ("connection refused", "no answer (timed out)"):
        return f"{reason} — {PG_START}"
    return reason


def check_redis(url: str, timeout: float) -> Result:
    parts = urlsplit(url)
    port = parts.port or 6379
    where = f"{parts.hostname or '127.0.0.1'}:{port}"
    try:
        import redis
    except ImportError:
        return Result(
            "FAIL", f"Redis {where}: redis-py missing — run: pip install -r requirements.txt"
        )
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        version = client.info("server").get("redis_version", "?")
    except redis.RedisError as exc:
        reason = _reason(_first_line(exc))
        hint = (
            f" — {REDIS_START.format(port=port)}"
            if "refused" in reason or "timed" in reason
            else ""
        )
        return Result("FAIL", f"Redis {where}: {reason}{hint}")
    finally:
        client.close()
    return Result("OK", f"Redis {where} ({version})")


def check_server(base: str, timeout: float) -> Result:
    url = base.rstrip("/") + "/health"
    # Loopback only: never let an HTTP proxy from the environment sit between us and the server.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = _reason(_first_line(getattr(exc, "reason", exc)))
        return Result(
            "FAIL",
            f"Server {base}: {reason} — start it with: python -m ccs_server serve"
            " (or unset SUT_URL so the kit starts its own)",
        )
    summary = _health_summary(body)
    if status != 200:
        return Result("FAIL", f"Server {base}: /health answered {status} ({summary})")
    return Result("OK", f"Server {base} ({summary})")


def _health_summary(body: bytes) -> str:
    try:
        doc = json.loads(body)
    except ValueError:
        return "body is not JSON"
    if not isinstance(doc, dict):
        return "body is not a JSON object"
    keys = ("status", "node_id", "database", "listener", "redis")
    return ", ".join(f"{k} {_short(doc[k])}" for k in keys if k in doc) or "empty JSON object"


def _short(value: object) -> str:
    if isinstance(value, dict):
        return str(value.get("status", value))
    return str(value)


def checks(timeout: float) -> list[tuple[bool, Callable[[], Result]]]:
    """(required, check) for each service, configured from the environment."""
    db = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    rd = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    sut = os.environ.get("SUT_URL", "").strip()
    found: list[tuple[bool, Callable[[], Result]]] = [
        (True, lambda: check_postgres(db, timeout)),
        (True, lambda: check_redis(rd, timeout)),
    ]
    if sut:
        found.append((True, lambda: check_server(sut, timeout)))
    else:
        found.append(
            (
                False,
                lambda: Result(
                    "SKIP",
                    "Server: SUT_URL not set — the kit starts its own reference server for each "
                    "run (set SUT_URL=http://host:port to check a running one)",
                ),
            )
        )
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds per check")
    args = parser.parse_args(argv)
    healthy = True
    for required, check in checks(args.timeout):
        result = check()
        print(result.line(), flush=True)
        healthy = healthy and (result.state == "OK" or not required)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
