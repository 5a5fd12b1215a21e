"""Test-kit configuration read from the environment (see docs/architecture.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

PROJECT_ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = PROJECT_ROOT / "results"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/ccs"
DEFAULT_TOKEN_SECRET = "ccs-dev-secret-change-me-at-least-32-bytes"  # HS256: >= 32 bytes


def load_env_file(path: Path | None = None) -> dict[str, str]:
    """Variables from ``.ccs-env`` (or ``CCS_ENV_FILE``) that the environment does not set yet.

    ``scripts/ensure_services.sh`` writes that file when it had to make the kit its own database
    role (a PostgreSQL with password authentication); loading it here hands the same
    ``DATABASE_URL`` to the runner, the libraries and every server they start. A variable already
    in the environment always wins. Returns what was loaded.
    """
    path = path or Path(os.environ.get("CCS_ENV_FILE") or PROJECT_ROOT / ".ccs-env")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    loaded = {}
    for line in lines:
        name, sep, value = line.strip().partition("=")
        if sep and name and not name.startswith("#") and name not in os.environ:
            os.environ[name] = loaded[name] = value.strip().strip("'\"")
    return loaded


load_env_file()


@dataclass(frozen=True)
class KitConfig:
    """One snapshot of the kit's environment variables."""

    sut_url: str
    database_url: str
    token_secret: str
    token_issuer: str
    token_audience: str
    timeout_scale: float

    @classmethod
    def from_env(cls) -> KitConfig:
        return cls(
            sut_url=os.environ.get("SUT_URL", "").rstrip("/"),
            database_url=os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL),
            token_secret=os.environ.get("CCS_TOKEN_SECRET", DEFAULT_TOKEN_SECRET),
            token_issuer=os.environ.get("CCS_TOKEN_ISSUER", "ccs"),
            token_audience=os.environ.get("CCS_TOKEN_AUDIENCE", "ccs-clients"),
            timeout_scale=_timeout_scale(os.environ.get("CCS_TIMEOUT_SCALE", "")),
        )


def _timeout_scale(text: str) -> float:
    try:
        return max(float(text or 1.0), 0.01)
    except ValueError:
        return 1.0


def scale_timeout(timeout: timedelta | float, scale: float) -> float:
    """Seconds of ``timeout`` times ``scale``: the kit's one timeout scaling."""
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
    return seconds * scale


def scaled(timeout: timedelta | float) -> float:
    """Seconds of ``timeout`` times ``CCS_TIMEOUT_SCALE`` (slow CI machines), for code that holds
    no :class:`ccskit.context.KitContext` (the context's ``scaled`` is the same rule)."""
    return scale_timeout(timeout, KitConfig.from_env().timeout_scale)


def ws_url_for(base_url: str) -> str:
    """``http://h:p`` -> ``ws://h:p/ws`` (``https`` -> ``wss``)."""
    parts = urlsplit(base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/ws", "", ""))


def database_url_for(dbname: str, base_url: str | None = None) -> str:
    """The kit's database URL (login, host, port) naming another database: scratch databases
    for tests and benches are made with the same login the kit was given, which on a cluster
    with password authentication is the kit's own role, not ``postgres``."""
    parts = urlsplit(base_url or KitConfig.from_env().database_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, ""))


def admin_database_url() -> str:
    """Where benches create and drop their scratch databases: ``BENCH_ADMIN_DSN`` when set,
    else the kit's own login on database ``postgres``."""
    return os.environ.get("BENCH_ADMIN_DSN") or database_url_for("postgres")
