"""Authentication: HS256 tokens (minting, verification with an algorithm allowlist) and the
device check shared by the WebSocket and REST sides."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import jwt
from jwt.warnings import InsecureKeyLengthWarning

from .config import Settings
from .errors import WireError
from .ports import MessageStore

# Config refuses a secret shorter than 32 bytes; a short key reaches jwt only when a test signs
# with a wrong secret on purpose, where the library's per-call warning would be noise.
warnings.filterwarnings("ignore", category=InsecureKeyLengthWarning)

ALGORITHMS = ["HS256"]  # allowlist: "none" and every other algorithm are refused


@dataclass(frozen=True)
class Identity:
    """Who a verified token speaks for."""

    user_id: str
    device_id: str | None
    admin: bool
    expires_at: float


def mint_token(
    secret: str,
    user: str,
    device: str | None = None,
    ttl: int = 3600,
    admin: bool = False,
    issuer: str = "ccs",
    audience: str = "ccs-clients",
) -> str:
    """Return a signed token for ``user`` (and ``device``); ``admin`` adds ``role: admin``."""
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": user,
        "iat": now,
        "exp": now + ttl,
        "iss": issuer,
        "aud": audience,
    }
    if device:
        claims["dev"] = device
    if admin:
        claims["role"] = "admin"
    return jwt.encode(claims, secret, algorithm="HS256")


def verify_token(token: object, secret: str, issuer: str, audience: str) -> Identity:
    """Verify signature, algorithm, expiry, issuer and audience; raise WireError otherwise."""
    if not isinstance(token, str) or not token or len(token) > 4096:
        raise WireError("auth_failed", "token missing or malformed")
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=ALGORITHMS,
            audience=audience,
            issuer=issuer,
            options={"require": ["exp", "sub", "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise WireError("token_expired", "token expired") from None
    except jwt.PyJWTError:
        raise WireError("auth_failed", "token invalid") from None
    sub, dev = claims.get("sub"), claims.get("dev")
    if not isinstance(sub, str) or (dev is not None and not isinstance(dev, str)):
        raise WireError("auth_failed", "token invalid")
    return Identity(sub, dev, claims.get("role") == "admin", float(claims["exp"]))


async def authenticate(settings: Settings, store: MessageStore, token: object) -> Identity:
    """Verify a device token and that the device exists, belongs to the user and is not revoked.

    The one check behind the WebSocket upgrade, ``hello`` and every device endpoint of the REST
    API, so a revoked device is refused the same way everywhere.
    """
    s = settings
    ident = verify_token(token, s.token_secret, s.token_issuer, s.token_audience)
    if ident.device_id is None:
        raise WireError("auth_failed", "token names no device")
    owner = await store.device_owner(ident.device_id)
    if owner is None or owner[0] != ident.user_id:
        raise WireError("auth_failed", "unknown device")
    if owner[1]:
        raise WireError("auth_failed", "device revoked")
    return ident
