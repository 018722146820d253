"""Who is calling: the bearer session token of a request, and the organization checks built on it.

Other domains import exactly these names::

    from mqtthub.auth.deps import AuthenticatedUser, CurrentUser, current_user, require_org_access

``CurrentUser`` in an endpoint's signature makes the endpoint require a valid session
token (401 with ``WWW-Authenticate: Bearer`` otherwise); ``require_org_access`` then
confines it to one organization (403).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from mqtthub.auth.jwt import verify_session_token
from mqtthub.auth.passwords import PasswordWorkers
from mqtthub.crypto import SecretBox
from mqtthub.errors import PermissionDeniedError, UnauthenticatedError
from mqtthub.models import User, UserRole
from mqtthub.observability.auth_checks import AuthChecks
from mqtthub.web.deps import SecretsDep, SessionDep
from mqtthub.web.state import provide

AuthChecksDep = Annotated[AuthChecks, Depends(provide(AuthChecks))]
"""The counters of credential checks (``/metrics``)."""
PasswordsDep = Annotated[PasswordWorkers, Depends(provide(PasswordWorkers))]
"""The bounded threads that hash and check passwords."""

_bearer = HTTPBearer(auto_error=False, description="The `token` returned by `POST /api/v1/auth/login`.")


@dataclass(frozen=True)
class AuthenticatedUser:
    """The user behind a request, as checked against the database for this request."""

    id: str
    email: str
    role: UserRole
    organization_id: str | None

    @property
    def is_platform_admin(self) -> bool:
        """True for a platform administrator, who may act on every organization."""
        return self.role is UserRole.PLATFORM_ADMIN


async def current_user(
    session: SessionDep,
    secrets: SecretsDep,
    checks: AuthChecksDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AuthenticatedUser:
    """The caller, from ``Authorization: Bearer <session token>``.

    The token's signature and expiry are checked, then the user is read from the
    database so that a deleted or deactivated user, or a changed role, takes effect
    on the next request rather than when the token expires.

    Raises:
        UnauthenticatedError: no bearer token, or an invalid or expired one, or an inactive user.
    """
    if credentials is None or credentials.scheme.lower() != "bearer":
        checks.refused("none")
        raise UnauthenticatedError("missing bearer token: log in with POST /api/v1/auth/login")
    return await user_of_session_token(session, secrets, checks, credentials.credentials)


async def user_of_session_token(
    session: AsyncSession, secrets: SecretBox, checks: AuthChecks, token: str
) -> AuthenticatedUser:
    """The user a session token names, checked against the database (the API's bearer and the console's cookie).

    Raises:
        UnauthenticatedError: an invalid or expired token, or a user that is gone or inactive.
    """
    with checks.check("session_token"):
        claims = verify_session_token(secrets.signing_key, token)
        user = await session.get(User, claims.user_id)
        if user is None or not user.is_active:
            raise UnauthenticatedError("the account of this session token no longer exists or is disabled")
    return AuthenticatedUser(id=user.id, email=user.email, role=user.role, organization_id=user.organization_id)


CurrentUser = Annotated[AuthenticatedUser, Depends(current_user)]


def require_org_access(user: AuthenticatedUser, organization_id: str, *, admin: bool = False) -> None:
    """Allow ``user`` to act on ``organization_id``, or raise.

    A platform admin passes everything. Org admins and members pass only for their own
    organization; with ``admin=True`` a member is refused too (managing devices and tokens
    needs an org admin).

    Raises:
        PermissionDeniedError: the organization is not the user's, or ``admin`` is required.
    """
    if user.is_platform_admin:
        return
    if user.organization_id != organization_id:
        raise PermissionDeniedError("you do not have access to this organization")
    if admin and user.role is not UserRole.ORG_ADMIN:
        raise PermissionDeniedError("this action needs an organization administrator")
