"""Session tokens: round trip, expiry, forgery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from mqtthub.auth.jwt import issue_session_token, verify_session_token
from mqtthub.errors import UnauthenticatedError

KEY = "k" * 64


def test_round_trip_keeps_the_claims() -> None:
    token, expires_at = issue_session_token(
        KEY, user_id="u1", email="a@b.c", role="org_admin", organization_id="o1", lifetime=timedelta(minutes=5)
    )
    claims = verify_session_token(KEY, token)
    assert (claims.user_id, claims.email, claims.role, claims.organization_id) == ("u1", "a@b.c", "org_admin", "o1")
    assert claims.expires_at == expires_at
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_expired_token_is_refused() -> None:
    token, _ = issue_session_token(
        KEY,
        user_id="u1",
        email="a@b.c",
        role="org_member",
        organization_id=None,
        lifetime=timedelta(minutes=1),
        now=datetime.now(UTC) - timedelta(minutes=2),
    )
    with pytest.raises(UnauthenticatedError, match="expired"):
        verify_session_token(KEY, token)


def test_other_key_and_other_algorithm_are_refused() -> None:
    token, _ = issue_session_token(
        KEY, user_id="u1", email="a@b.c", role="org_member", organization_id=None, lifetime=timedelta(minutes=1)
    )
    with pytest.raises(UnauthenticatedError):
        verify_session_token("x" * 64, token)
    unsigned = jwt.encode({"sub": "u1", "iss": "mqtthub", "iat": 0, "exp": 2**40}, key="", algorithm="none")
    with pytest.raises(UnauthenticatedError):
        verify_session_token(KEY, unsigned)
    with pytest.raises(UnauthenticatedError):
        verify_session_token(KEY, "not a token")


def test_token_without_required_claims_is_refused() -> None:
    token = jwt.encode({"sub": "u1", "iss": "mqtthub"}, KEY, algorithm="HS256")
    with pytest.raises(UnauthenticatedError):
        verify_session_token(KEY, token)
    wrong_types = jwt.encode(
        {"sub": "u1", "iss": "mqtthub", "iat": 0, "exp": 2**40, "email": 5, "role": "x"}, KEY, algorithm="HS256"
    )
    with pytest.raises(UnauthenticatedError):
        verify_session_token(KEY, wrong_types)
