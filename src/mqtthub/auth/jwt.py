"""Session tokens for the HTTP API: HS256 JWTs signed with the hub's signing key.

A login returns one; every management endpoint takes it as ``Authorization: Bearer …``.
The token names the user (``sub``), its e-mail, role and organization, and expires after
``settings.jwt_expiry_minutes``. Claims are a convenience: the request dependency still
checks that the user exists and is active, so deactivating a user bites at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from mqtthub.errors import UnauthenticatedError

ALGORITHM = "HS256"
ISSUER = "mqtthub"


@dataclass(frozen=True, slots=True)
class SessionClaims:
    """What a verified session token says about its bearer."""

    user_id: str
    email: str
    role: str
    organization_id: str | None
    expires_at: datetime


def issue_session_token(
    signing_key: str,
    *,
    user_id: str,
    email: str,
    role: str,
    organization_id: str | None,
    lifetime: timedelta,
    now: datetime | None = None,
) -> tuple[str, datetime]:
    """A signed token for the user and the moment it expires (UTC, whole seconds)."""
    issued = (now or datetime.now(UTC)).replace(microsecond=0)
    expires_at = issued + lifetime
    claims = {
        "iss": ISSUER,
        "sub": user_id,
        "email": email,
        "role": role,
        "org": organization_id,
        "iat": int(issued.timestamp()),
        "exp": int(expires_at.timestamp()),
    }
    return jwt.encode(claims, signing_key, algorithm=ALGORITHM), expires_at


def verify_session_token(signing_key: str, token: str) -> SessionClaims:
    """Check the signature, issuer and expiry of a session token and return its claims.

    Raises:
        UnauthenticatedError: the token is malformed, forged, expired or incomplete.
    """
    try:
        claims = jwt.decode(
            token,
            signing_key,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["sub", "exp", "iat", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise UnauthenticatedError("the session token has expired; log in again") from None
    except jwt.InvalidTokenError:
        raise UnauthenticatedError("invalid session token") from None
    user_id, email, role, organization_id = (claims.get(key) for key in ("sub", "email", "role", "org"))
    if not isinstance(user_id, str) or not isinstance(email, str) or not isinstance(role, str):
        raise UnauthenticatedError("invalid session token")
    if organization_id is not None and not isinstance(organization_id, str):
        raise UnauthenticatedError("invalid session token")
    return SessionClaims(
        user_id=user_id,
        email=email,
        role=role,
        organization_id=organization_id,
        expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
    )
