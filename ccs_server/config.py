"""One typed, validated configuration object read from the environment (docs/architecture.md)."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

MIN_SECRET_BYTES = 32  # RFC 7518 3.2: an HS256 key at least as long as the hash output


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the variable and what is expected."""


def _default_node_id() -> str:
    return f"node-{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class Settings:
    """Server settings. Field ``x`` is read from ``CCS_X`` (or the listed plain name)."""

    database_url: str = "postgresql://postgres@127.0.0.1:5432/ccs"
    redis_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8080
    port_file: str = ""
    node_id: str = field(default_factory=_default_node_id)
    token_secret: str = "ccs-dev-secret-change-me-at-least-32-bytes"
    token_issuer: str = "ccs"
    token_audience: str = "ccs-clients"
    db_pool_size: int = 10
    db_timeout_ms: int = 3000
    auth_timeout_ms: int = 5000
    heartbeat_interval_ms: int = 10000
    heartbeat_timeout_ms: int = 20000
    presence_grace_ms: int = 300
    replay_limit: int = 1000
    repair_interval_ms: int = 1000
    max_frame_bytes: int = 65536
    max_body_bytes: int = 16384
    send_rate_per_s: int = 200
    send_queue_max: int = 1000
    node_lease_ms: int = 5000
    shutdown_timeout_ms: int = 10000
    max_connections_per_user: int = 20
    allowed_origins: tuple[str, ...] = ()
    allow_unsafe_durability: bool = False
    log_level: str = "INFO"
    log_file: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``env`` (default ``os.environ``); raise ConfigError on bad values."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in fields(cls):
            name = _env_name(f.name)
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(name, raw, f.type)
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        """Check ranges that a type alone cannot express."""
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"CCS_PORT must be 0..65535, got {self.port}")
        positive = [
            "db_pool_size",
            "db_timeout_ms",
            "auth_timeout_ms",
            "heartbeat_interval_ms",
            "heartbeat_timeout_ms",
            "replay_limit",
            "repair_interval_ms",
            "max_frame_bytes",
            "max_body_bytes",
            "send_rate_per_s",
            "send_queue_max",
            "node_lease_ms",
            "shutdown_timeout_ms",
            "max_connections_per_user",
        ]
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{_env_name(name)} must be > 0, got {getattr(self, name)}")
        if self.presence_grace_ms < 0:
            raise ConfigError("CCS_PRESENCE_GRACE_MS must be >= 0")
        if self.log_level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ConfigError(
                f"CCS_LOG_LEVEL must be DEBUG/INFO/WARNING/ERROR, got {self.log_level}"
            )
        if not self.database_url.startswith(("postgresql://", "postgres://")):
            raise ConfigError("DATABASE_URL must be a postgresql:// URL")
        if len(self.token_secret.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(
                f"CCS_TOKEN_SECRET must be at least {MIN_SECRET_BYTES} bytes"
                " (HS256 keys shorter than the hash output are refused by RFC 7518 3.2)"
            )


def _env_name(field_name: str) -> str:
    if field_name in ("database_url", "redis_url"):
        return field_name.upper()
    return "CCS_" + field_name.upper()


def _parse(name: str, raw: str, typ: object) -> object:
    typ_s = str(typ)
    if typ_s == "int":
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if typ_s == "bool":
        low = raw.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name} must be true or false, got {raw!r}")
    if typ_s.startswith("tuple"):
        return tuple(p.strip() for p in raw.split(",") if p.strip())
    return raw
