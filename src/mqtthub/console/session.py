"""Who is signed in to the console, and the CSRF check of every request that changes something.

The console's credential is the session cookie of :mod:`mqtthub.auth.cookie`: the session token the API's
login issues, checked the same way (:func:`~mqtthub.auth.deps.user_of_session_token`), so a disabled user or
a changed role takes effect on the next request. The role gate is the API's own
(:func:`~mqtthub.auth.roles.enforce_role` runs before every console route too).

CSRF: every unsafe request (POST, PUT, PATCH, DELETE) must carry the session's CSRF token, in the
``X-CSRF-Token`` header (htmx requests, set once on ``<body>``) or the ``csrf_token`` form field (plain forms).
The token is an HMAC of the session token under the hub's signing key: one per session, nothing stored, and
useless to a page that cannot read the console's HTML. The sign-in form, which has no session yet, is
protected the same way by a random token in a short-lived cookie of its own (double submit).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets as random
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from starlette.responses import Response

from mqtthub.auth.cookie import SESSION_COOKIE, session_cookie
from mqtthub.auth.deps import AuthChecksDep, AuthenticatedUser, user_of_session_token
from mqtthub.auth.roles import Operation, permits
from mqtthub.errors import PermissionDeniedError, UnauthenticatedError
from mqtthub.web.deps import SecretsDep, SessionDep

CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SIGNIN_COOKIE = "mqtthub_signin"
"""The sign-in form's own CSRF cookie (the form has no session yet)."""
SIGNIN_COOKIE_SECONDS = 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PREFIX = "/ui"


class SignInRequired(UnauthenticatedError):
    """No valid console session: the console answers with the sign-in page instead of an error."""


class CsrfRefused(PermissionDeniedError):
    """An unsafe request without the session's CSRF token."""

    code = "csrf_failed"


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """The signed-in user of a console request, with the session's CSRF token."""

    user: AuthenticatedUser
    csrf: str

    def can(self, operation: Operation) -> bool:
        """Whether the user's role may perform ``operation`` (pages offer only what is allowed)."""
        return permits(self.user.role, operation)


def csrf_token(signing_key: str, session_token: str) -> str:
    """The CSRF token of a console session."""
    return hmac.new(signing_key.encode(), b"console-csrf\0" + session_token.encode(), hashlib.sha256).hexdigest()


async def submitted_csrf(request: Request) -> str:
    """The CSRF token a request carries, from its header or, for a plain form, its form field."""
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


def check_csrf(expected: str, submitted: str) -> None:
    """Raise :class:`CsrfRefused` unless ``submitted`` is ``expected``."""
    if not submitted or not hmac.compare_digest(expected, submitted):
        raise CsrfRefused("the form has expired or did not come from this console: reload the page and try again")


async def console_session(
    request: Request, session: SessionDep, secrets: SecretsDep, checks: AuthChecksDep
) -> ConsoleSession:
    """The signed-in user; unsafe methods must carry the session's CSRF token.

    Raises:
        SignInRequired: no session cookie, or an expired or invalid one, or a user gone or disabled.
        CsrfRefused: an unsafe request without the right CSRF token.
    """
    token = session_cookie(request)
    if token is None:
        checks.refused("none")
        raise SignInRequired("sign in to use the console")
    try:
        user = await user_of_session_token(session, secrets, checks, token)
    except UnauthenticatedError as exc:
        raise SignInRequired(exc.message) from None
    expected = csrf_token(secrets.signing_key, token)
    if request.method not in SAFE_METHODS:
        check_csrf(expected, await submitted_csrf(request))
    return ConsoleSession(user=user, csrf=expected)


Console = Annotated[ConsoleSession, Depends(console_session)]


def _secure(request: Request) -> bool:
    # Secure whenever the browser reached the hub over TLS (directly or through a proxy that says so).
    return request.url.scheme == "https"


def start_session(response: Response, request: Request, token: str, expires_at: datetime) -> None:
    """Set the session cookie on ``response``, expiring with the token."""
    response.set_cookie(
        SESSION_COOKIE, token, expires=expires_at, path="/", httponly=True, samesite="strict", secure=_secure(request)
    )


def end_session(response: Response, request: Request) -> None:
    """Remove the session cookie."""
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=_secure(request))


def new_signin_token() -> str:
    """A fresh CSRF token for the sign-in form (remember it with :func:`remember_signin_token`)."""
    return random.token_urlsafe(24)


def remember_signin_token(response: Response, request: Request, token: str) -> None:
    """Set the sign-in form's CSRF cookie, valid for the sign-in page only."""
    response.set_cookie(
        SIGNIN_COOKIE,
        token,
        max_age=SIGNIN_COOKIE_SECONDS,
        path=f"{PREFIX}/signin",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
