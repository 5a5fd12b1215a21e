"""Support for the hostile-input suite: bad tokens, a bystander with a steady trickle, stored-state
fingerprints and a token scan of log files."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from jwt.warnings import InsecureKeyLengthWarning

from .client import DeviceClient
from .config import KitConfig
from .rawws import RawWebSocket

JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
TOKEN_KINDS = (
    "valid",
    "malformed",
    "bad_signature",
    "alg_none",
    "alg_hs512",
    "expired",
    "not_yet_valid",
    "wrong_audience",
    "wrong_issuer",
    "no_expiry",
    "unknown_device",
    "other_users_device",
)


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def hostile_token(
    kind: str, user: str, device: str, other_device: str = "", ttl_s: int = 3600
) -> str:
    """A token of ``kind`` (see :data:`TOKEN_KINDS`) for ``user``/``device``."""
    cfg = KitConfig.from_env()
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": user,
        "dev": device,
        "iss": cfg.token_issuer,
        "aud": cfg.token_audience,
        "iat": now,
        "exp": now + ttl_s,
    }
    secret, alg = cfg.token_secret, "HS256"
    if kind == "malformed":
        return "not-a-jwt." + _b64({"sub": user})
    if kind == "alg_none":
        return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    changes: dict[str, dict[str, Any]] = {
        "expired": {"iat": now - 7200, "exp": now - 3600},
        "not_yet_valid": {"nbf": now + 3600},
        "wrong_audience": {"aud": "someone-else"},
        "wrong_issuer": {"iss": "evil-issuer"},
        "unknown_device": {"dev": f"{device}-nonexistent"},
        "other_users_device": {"dev": other_device},
    }
    claims.update(changes.get(kind, {}))
    if kind == "no_expiry":
        del claims["exp"]
    elif kind == "bad_signature":
        secret = secret + "-but-wrong"
    elif kind == "alg_hs512":
        alg = "HS512"
    elif kind not in changes and kind != "valid":
        raise ValueError(f"unknown token kind {kind!r}; known: {', '.join(TOKEN_KINDS)}")
    with warnings.catch_warnings():
        # the development secret is short; what the server accepts is what is under test
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        return jwt.encode(claims, secret.ljust(64, "_") if alg == "HS512" else secret, alg)


@dataclass
class Trickle:
    """What the bystander's conversation partner sent: seq -> monotonic send time."""

    sent_at: dict[str, float] = field(default_factory=dict)  # client_msg_id -> monotonic
    acked: list[int] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


class Bystander:
    """A watcher device that must notice nothing, and a talker sending a steady trickle.

    Both are members of ``conversation``. The talker sends one message every ``interval_s``;
    the watcher must receive every message of the conversation (from any sender) once, in
    order, with its latency recorded.
    """

    def __init__(
        self, conversation: str, watcher: DeviceClient, talker: DeviceClient, interval_s: float
    ) -> None:
        self.conversation = conversation
        self.watcher = watcher
        self.talker = talker
        self.interval_s = interval_s
        self.trickle = Trickle()
        self._task: asyncio.Task[None] | None = None

    async def start(self, timeout_s: float) -> None:
        """Connect both devices and start the trickle."""
        await self.watcher.open(timeout_s=timeout_s)
        await self.talker.open(timeout_s=timeout_s)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        n = 0
        while True:
            n += 1
            cmid = f"trickle-{n}-{time.time_ns() % 10**9}"
            self.trickle.sent_at[cmid] = time.monotonic()
            try:
                reply = await self.talker.send_message(self.conversation, {"n": n}, cmid, 10.0)
            except Exception as exc:  # recorded: the check reports it, the trickle goes on
                reply = {"type": "error", "code": "client", "message": str(exc)[:200]}
            if reply.get("type") == "ack":
                self.trickle.acked.append(int(reply["seq"]))
            else:
                self.trickle.errors.append(reply)
            await asyncio.sleep(self.interval_s)  # the trickle's pace, not synchronisation

    async def stop(self) -> None:
        """Stop the trickle and close both devices."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for client in (self.talker, self.watcher):
            try:
                await client.close(1000, "suite done", 5.0)
            except Exception:  # teardown goes on; the report shows what happened
                continue

    def seqs(self) -> list[int]:
        """Seqs of the conversation the watcher received, in arrival order."""
        frames = self.watcher.find("message", {"conversation_id": self.conversation}, since=0)
        return [int((f.data or {})["seq"]) for f in frames]

    async def wait_for_seq(self, seq: int, timeout_s: float) -> None:
        """Wait until the watcher has received ``seq`` (or fail with its context)."""
        fields = {"conversation_id": self.conversation, "seq": seq}
        await self.watcher.wait_for("message", fields, timeout_s, since=0)

    def latencies_ms(self, since_mono: float = 0.0) -> list[float]:
        """Send-to-watcher latency of every trickle message sent after ``since_mono``."""
        out = []
        frames = self.watcher.find("message", {"conversation_id": self.conversation}, since=0)
        for frame in frames:
            cmid = (frame.data or {}).get("client_msg_id")
            sent = self.trickle.sent_at.get(str(cmid))
            if sent is not None and sent >= since_mono:
                out.append(round((frame.mono - sent) * 1000.0, 2))
        return out


def fingerprint_sql(
    conversations: list[str], devices: list[str], exclude_device: str
) -> tuple[str, tuple[Any, ...]]:
    """SQL (and parameters) of what a rejected input must not change, scoped to the suite's own
    conversations and devices so other suites writing to the same database do not interfere."""
    sql = (
        "SELECT"
        " (SELECT count(*) FROM messages WHERE (conversation_id = ANY(%s)"
        "   OR sender_device_id = ANY(%s)) AND sender_device_id IS DISTINCT FROM %s) AS messages,"
        " (SELECT coalesce(sum(version), 0) FROM messages WHERE conversation_id = ANY(%s)"
        "   AND sender_device_id IS DISTINCT FROM %s) AS versions,"
        " (SELECT coalesce(sum(delivered_upto + read_upto), 0) FROM device_cursors"
        "   WHERE device_id = ANY(%s)) AS cursors,"
        " (SELECT count(*) FROM conversation_members WHERE conversation_id = ANY(%s)) AS members,"
        " (SELECT count(*) FROM conversations WHERE id = ANY(%s)) AS conversations"
    )
    convs, devs, talker = conversations, devices, exclude_device
    params = (convs, devs, talker, convs, talker, devs, convs, convs)
    return sql, params


def scan_logs_for_tokens(paths: list[Path], tokens: list[str]) -> list[str]:
    """Lines (cut, with file and line number) that contain a known token or anything JWT-shaped."""
    hits = []
    for path in paths:
        if not path.exists():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            found = JWT_RE.search(line) or next((t for t in tokens if t and t in line), None)
            if found:
                hits.append(f"{path.name}:{number}: {line[:200]}")
    return hits


@dataclass
class HostileSession:
    """What the hostile keyword classes share: tokens handed out (for the log scan), frame
    placeholders, hand-made connections by alias, and the bystander."""

    tokens: list[str] = field(default_factory=list)
    placeholders: dict[str, str] = field(default_factory=dict)
    raw: dict[str, RawWebSocket] = field(default_factory=dict)
    bystander: Bystander | None = None
    checked_trickle: int = 0

    def conn(self, alias: str) -> RawWebSocket:
        if alias not in self.raw:
            raise AssertionError(f"no raw connection called '{alias}' (known: {sorted(self.raw)})")
        return self.raw[alias]

    def by(self) -> Bystander:
        if self.bystander is None:
            raise AssertionError("no bystander was started (Start Bystander)")
        return self.bystander

    def placeholder(self, name: str) -> str:
        if name not in self.placeholders:
            known = sorted(self.placeholders)
            raise AssertionError(f"no frame placeholder ${name} was set (known: {known})")
        return self.placeholders[name]
