"""A private Redis (nothing persisted) started as a direct child process."""

from __future__ import annotations

import os

import redis

from ccskit.faults.service import ManagedService

REDIS_SERVER = os.environ.get("CCS_REDIS_SERVER", "redis-server")


class PrivateRedis(ManagedService):
    name = "redis"

    def _argv(self) -> list[str]:
        return [
            REDIS_SERVER,
            *("--port", str(self.port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no"),
            *("--dir", str(self.base_dir), "--daemonize", "no"),
        ]

    def _probe(self) -> bool:
        client = redis.Redis(
            host="127.0.0.1", port=self.port, socket_timeout=1, socket_connect_timeout=1
        )
        try:
            return bool(client.ping())
        finally:
            client.close()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"
