"""HS256 tokens minted locally with the shared secret (docs/protocol.md section 2)."""

from __future__ import annotations

import time
import warnings

import jwt
from jwt.warnings import InsecureKeyLengthWarning

from .config import KitConfig


def mint_token(
    user_id: str,
    device_id: str | None = None,
    *,
    admin: bool = False,
    ttl_s: int = 3600,
    config: KitConfig | None = None,
    **extra_claims: object,
) -> str:
    """A signed token for ``user_id`` (and ``device_id``); ``admin`` adds ``role: admin``."""
    cfg = config or KitConfig.from_env()
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": user_id,
        "iss": cfg.token_issuer,
        "aud": cfg.token_audience,
        "iat": now,
        "exp": now + ttl_s,
    }
    if device_id:
        claims["dev"] = device_id
    if admin:
        claims["role"] = "admin"
    claims.update(extra_claims)
    with warnings.catch_warnings():
        # The development default secret is short; the server under test decides what it accepts.
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        return jwt.encode(claims, cfg.token_secret, algorithm="HS256")
