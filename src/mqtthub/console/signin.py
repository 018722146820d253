"""Signing in and out, and where ``/ui`` leads.

Sign-in checks the e-mail and password exactly as the API's login does (the same attempt limits, counted
together: :func:`~mqtthub.auth.login.check_password_login`) and puts the session token in the session
cookie. ``/ui`` leads to the user's organization, or to the sign-in page.
"""

from __future__ import annotations

import hmac
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from starlette.responses import RedirectResponse, Response

from mqtthub.auth.attempts import LoginGuard
from mqtthub.auth.deps import AuthChecksDep, PasswordsDep
from mqtthub.auth.login import check_password_login, session_token_for
from mqtthub.auth.organizations import list_organizations
from mqtthub.console.routing import ConsoleRoute, error_response
from mqtthub.console.session import (
    PREFIX,
    SIGNIN_COOKIE,
    Console,
    end_session,
    new_signin_token,
    remember_signin_token,
    start_session,
)
from mqtthub.console.templating import render
from mqtthub.errors import MQTTHubError
from mqtthub.web.deps import SecretsDep, SessionDep, SettingsDep
from mqtthub.web.limits import BodySize, body_size
from mqtthub.web.state import provide

GuardDep = Annotated[LoginGuard, Depends(provide(LoginGuard))]

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)


def _next(target: str | None, fallback: str) -> str:
    # Only a console path: never a redirect to another site.
    if target and target.startswith(f"{PREFIX}/") and not target.startswith("//"):
        return target
    return fallback


def _signin_page(request: Request, *, email: str = "", error: str | None = None, status_code: int = 200) -> Response:
    token = new_signin_token()
    next_page = request.query_params.get("next", "")
    context = {"csrf": token, "email": email, "error": error, "next": next_page}
    response = render(request, "signin.html", context, status_code=status_code)
    remember_signin_token(response, request, token)
    return response


@router.get("", summary="Console home")
async def home(request: Request, console: Console, session: SessionDep) -> Response:
    """The user's organization's overview (the sign-in page first when nobody is signed in).

    A platform administrator outside every organization starts at the oldest one.
    """
    organization = console.user.organization_id
    if organization is None and console.user.is_platform_admin:
        organization = next((each.id for each in await list_organizations(session)), None)
    if organization is None:
        return error_response(request, 403, "this account belongs to no organization")
    return RedirectResponse(f"{PREFIX}/orgs/{organization}", status_code=303)


@router.get("/signin", summary="Sign-in page")
async def signin_page(request: Request) -> Response:
    """The sign-in form."""
    return _signin_page(request)


@router.post("/signin", summary="Sign in")
@body_size(BodySize.CREDENTIALS)
async def signin(
    request: Request,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form(max_length=100)],
    session: SessionDep,
    secrets: SecretsDep,
    settings: SettingsDep,
    guard: GuardDep,
    passwords: PasswordsDep,
    checks: AuthChecksDep,
    next_page: Annotated[str, Query(alias="next", max_length=2000)] = "",
) -> Response:
    """Check the e-mail and password, set the session cookie and go to the page asked for."""
    expected = request.cookies.get(SIGNIN_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, csrf_token):
        return _signin_page(request, email=email, error="The form expired: please try again.", status_code=403)
    address = request.client.host if request.client else "unknown"
    try:
        user = await check_password_login(
            session, guard, passwords, checks, email=email, password=password, address=address
        )
    except MQTTHubError as exc:
        return _signin_page(request, email=email, error=exc.message, status_code=exc.status_code)
    token, expires_at = session_token_for(user, secrets.signing_key, settings)
    fallback = f"{PREFIX}/orgs/{user.organization_id}" if user.organization_id else PREFIX
    response = RedirectResponse(_next(next_page, fallback), status_code=303)
    start_session(response, request, token, expires_at)
    response.delete_cookie(SIGNIN_COOKIE, path=f"{PREFIX}/signin")
    return response


@router.post("/signout", summary="Sign out")
async def signout(request: Request, console: Console) -> Response:
    """Remove the session cookie (the CSRF check keeps other sites from signing a user out)."""
    response = RedirectResponse(f"{PREFIX}/signin", status_code=303)
    end_session(response, request)
    return response


@router.get("/orgs", summary="Switch organization")
async def switch(console: Console, org: Annotated[str, Query(max_length=64)] = "") -> Response:
    """Go to organization ``org`` (the switcher's form); the organization's pages check access themselves."""
    target = org or console.user.organization_id or ""
    return RedirectResponse(f"{PREFIX}/orgs/{quote(target, safe='')}" if target else PREFIX, status_code=303)
