"""``POST /api/v1/auth/login``: e-mail and password for a session token, with attempt limits.

Attempts are counted per account (the e-mail) and per client address over a sliding
window; beyond either limit the answer is 429 with ``Retry-After``, before the password
is even checked. A successful login clears its account's count, so a user who mistypes a
few times is not locked out after getting it right.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from datetime import datetime, timedelta

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from mqtthub.api.deps import SessionDep, get_hub
from mqtthub.api.limits import BodySize, body_size
from mqtthub.auth.jwt import issue_session_token
from mqtthub.auth.passwords import hash_password, verify_password
from mqtthub.auth.ratelimit import SlidingWindowLimiter
from mqtthub.config import Settings
from mqtthub.errors import RateLimitedError, UnauthenticatedError
from mqtthub.models import User, UserRole

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


class LoginGuard:
    """The per-account and per-address attempt limits of one HTTP application."""

    def __init__(self, *, per_account: int, per_address: int, window: float) -> None:
        self.accounts = SlidingWindowLimiter(per_account, window)
        self.addresses = SlidingWindowLimiter(per_address, window)

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginGuard:
        """Limits as configured."""
        return cls(
            per_account=settings.login_attempts_per_account,
            per_address=settings.login_attempts_per_address,
            window=settings.login_window_seconds,
        )

    def admit(self, account: str, address: str) -> None:
        """Count an attempt, or refuse it when either limit is reached.

        Raises:
            RateLimitedError: too many recent attempts for the account or from the address.
        """
        wait = max(self.accounts.retry_after(account), self.addresses.retry_after(address))
        if wait > 0:
            logger.warning("login attempts limited for an account from %s", address)
            raise RateLimitedError("too many login attempts; try again later", retry_after=wait)
        self.accounts.hit(account)
        self.addresses.hit(address)

    def succeeded(self, account: str) -> None:
        """Forget the account's attempts after a successful login."""
        self.accounts.reset(account)


@functools.cache
def _unknown_user_hash() -> str:
    """Verified when the e-mail is unknown, so a wrong e-mail costs as much time as a wrong password."""
    return hash_password("mqtthub: no such user")


def login_router(guard: LoginGuard) -> APIRouter:
    """The login endpoint, bound to one :class:`LoginGuard`."""
    router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

    @router.post(
        "/login",
        summary="Log in",
        responses={401: {"description": "Wrong e-mail or password"}, 429: {"description": "Too many attempts"}},
    )
    @body_size(BodySize.CREDENTIALS)
    async def login(body: LoginRequest, request: Request, session: SessionDep) -> LoginResponse:
        """Exchange an e-mail and password for a session token (JWT) valid for `jwt_expiry_minutes`."""
        email = body.email.strip().lower()
        address = request.client.host if request.client else "unknown"
        guard.admit(email, address)
        user = await session.scalar(select(User).where(User.email == email))
        stored = user.password_hash if user is not None else _unknown_user_hash()
        # argon2 takes tens of milliseconds of CPU: keep it off the event loop.
        matches = await asyncio.to_thread(verify_password, stored, body.password)
        if user is None or not matches or not user.is_active:
            logger.info("failed login from %s", address)
            raise UnauthenticatedError("invalid e-mail or password")
        guard.succeeded(email)
        hub = get_hub(request)
        token, expires_at = issue_session_token(
            hub.secrets.signing_key,
            user_id=user.id,
            email=user.email,
            role=user.role.value,
            organization_id=user.organization_id,
            lifetime=timedelta(minutes=hub.settings.jwt_expiry_minutes),
        )
        return LoginResponse(
            token=token,
            expires_at=expires_at,
            user=LoginUser(id=user.id, email=user.email, role=user.role, organization_id=user.organization_id),
        )

    return router
