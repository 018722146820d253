"""``POST /api/v1/auth/login``: e-mail and password for a session token, with attempt limits.

Attempts are limited by the hub's :class:`~mqtthub.auth.attempts.LoginGuard`, shared with MQTT
logins: beyond a limit the answer is 429 with ``Retry-After``, before the password is even
checked. The check runs on the hub's password workers; when they, or this address's share of
them, are busy the answer is 503.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mqtthub.auth.attempts import LoginGuard
from mqtthub.auth.deps import AuthChecksDep, PasswordsDep
from mqtthub.auth.jwt import issue_session_token
from mqtthub.auth.passwords import PasswordWorkers
from mqtthub.config import Settings
from mqtthub.errors import UnauthenticatedError
from mqtthub.models import User, UserRole
from mqtthub.observability.auth_checks import AuthChecks
from mqtthub.web.deps import SecretsDep, SessionDep, SettingsDep
from mqtthub.web.limits import BodySize, body_size

logger = logging.getLogger(__name__)


class LoginRequest(BaseModel):
    """Credentials of a user."""

    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class LoginUser(BaseModel):
    """The logged-in user, as the session token describes it."""

    id: str
    email: str
    role: UserRole
    organization_id: str | None


class LoginResponse(BaseModel):
    """A session token to send as ``Authorization: Bearer <token>``."""

    token: str
    token_type: str = "bearer"  # noqa: S105 (the scheme name, not a secret)
    expires_at: datetime
    user: LoginUser


async def check_password_login(
    session: AsyncSession,
    guard: LoginGuard,
    passwords: PasswordWorkers,
    checks: AuthChecks,
    *,
    email: str,
    password: str,
    address: str,
) -> User:
    """The active user with this e-mail and password, checked within ``guard``'s limits.

    Shared by the API's login and the web console's sign-in, so both doors count against the
    same limits and answer alike.

    Raises:
        RateLimitedError: too many recent attempts for the account or from ``address``.
        UnavailableError: too many password checks in flight from ``address``.
        UnauthenticatedError: no such active user, or a wrong password.
    """
    email = email.strip().lower()
    guard.admit(email, address)
    with checks.check("password"):
        user = await session.scalar(select(User).where(User.email == email))
        with guard.checking(address):
            matches = await passwords.verify(user.password_hash if user is not None else None, password)
        if user is None or not matches or not user.is_active:
            logger.info("failed login from %s", address)
            raise UnauthenticatedError("invalid e-mail or password")
    guard.succeeded(email)
    return user


def session_token_for(user: User, signing_key: str, settings: Settings) -> tuple[str, datetime]:
    """A session token for ``user``, valid for ``settings.jwt_expiry_minutes``, and when it expires."""
    return issue_session_token(
        signing_key,
        user_id=user.id,
        email=user.email,
        role=user.role.value,
        organization_id=user.organization_id,
        lifetime=timedelta(minutes=settings.jwt_expiry_minutes),
    )


def login_router(guard: LoginGuard) -> APIRouter:
    """The login endpoint, bound to one :class:`LoginGuard`."""
    router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

    @router.post(
        "/login",
        summary="Log in",
        responses={
            401: {"description": "Wrong e-mail or password"},
            429: {"description": "Too many attempts"},
            503: {"description": "Too many password checks at once"},
        },
    )
    @body_size(BodySize.CREDENTIALS)
    async def login(
        body: LoginRequest,
        request: Request,
        session: SessionDep,
        secrets: SecretsDep,
        settings: SettingsDep,
        passwords: PasswordsDep,
        checks: AuthChecksDep,
    ) -> LoginResponse:
        """Exchange an e-mail and password for a session token (JWT) valid for `jwt_expiry_minutes`."""
        address = request.client.host if request.client else "unknown"
        user = await check_password_login(
            session, guard, passwords, checks, email=body.email, password=body.password, address=address
        )
        token, expires_at = session_token_for(user, secrets.signing_key, settings)
        return LoginResponse(
            token=token,
            expires_at=expires_at,
            user=LoginUser(id=user.id, email=user.email, role=user.role, organization_id=user.organization_id),
        )

    return router
