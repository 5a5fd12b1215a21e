"""Keywords: tokens built to be refused, and the proof that no token reached a server log."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from robot.api.deco import keyword

from ...context import KitContext
from ...hostile import HostileSession, hostile_token, scan_logs_for_tokens


class HostileTokenKeywords:
    """Tokens of every hostile kind (`Hostile Token`); each one handed out by the hostile
    keywords is remembered, so `Server Logs Should Not Contain Tokens` can prove that none of
    them (and nothing JWT-shaped) was written to a server log."""

    def __init__(self, ctx: KitContext) -> None:
        self.ctx = ctx
        self.session: HostileSession = ctx.hostile

    @keyword
    def hostile_token(self, kind: str, device: str, ttl: timedelta = timedelta(hours=1)) -> str:
        """A token of ``kind`` for device fixture ``device``: valid, malformed, bad_signature,
        alg_none, alg_hs512, expired, not_yet_valid, wrong_audience, wrong_issuer, no_expiry,
        unknown_device, other_users_device (``other_device`` placeholder names the victim)."""
        user, dev = self.ctx.fixtures.device(device)
        other = ""
        if kind == "other_users_device":
            other = self.ctx.fixtures.device_id(self.session.placeholder("OTHER_DEVICE"))
        token = hostile_token(kind, user, dev, other, int(ttl.total_seconds()))
        self.session.tokens.append(token)
        return token

    @keyword
    def server_log_files(self, *extra: str) -> list[str]:
        """Log files of the server under test this run can read (nodes started by name, plus
        ``extra`` paths)."""
        paths = [str(p.log_path) for p in self.ctx.nodes.started.values() if p.log_path]
        return paths + [p for p in extra if p]

    @keyword
    def server_logs_should_not_contain_tokens(self, *paths: str) -> int:
        """No token handed out here, and nothing JWT-shaped, appears in ``paths``; returns how
        many tokens were checked."""
        files = [Path(p) for p in paths]
        missing = [str(p) for p in files if not p.exists()]
        if not files or missing:
            raise AssertionError(f"log files to scan are missing: {missing or 'none given'}")
        hits = scan_logs_for_tokens(files, self.session.tokens)
        if hits:
            raise AssertionError("tokens found in server logs:\n" + "\n".join(hits[:10]))
        return len(self.session.tokens)
