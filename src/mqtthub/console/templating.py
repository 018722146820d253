"""Rendering console pages: one Jinja2 environment over the package's templates, and the frame of every page.

Every page extends ``base.html``, which draws the navigation from the :class:`Frame`: the signed-in user,
the organization the page is about (platform administrators get a switcher over every organization) and
which actions the user's role allows. A request made by htmx (``HX-Request``) for a part of a page gets
only that part: the route renders the partial template instead of the page.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse, RedirectResponse, Response

from mqtthub import __version__
from mqtthub.auth.deps import require_org_access
from mqtthub.auth.organizations import get_organization, list_organizations
from mqtthub.auth.roles import Operation
from mqtthub.console.session import CSRF_FIELD, CSRF_HEADER, PREFIX, Console, ConsoleSession
from mqtthub.web.deps import SessionDep


@functools.cache
def environment() -> Environment:
    """The templates' environment (built on first use: nothing is loaded at import time)."""
    env = Environment(
        loader=PackageLoader("mqtthub.console", "templates"),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals |= {
        "PREFIX": PREFIX,
        "Operation": Operation,
        "CSRF_FIELD": CSRF_FIELD,
        "CSRF_HEADER": CSRF_HEADER,
        "version": __version__,
    }
    return env


@dataclass(frozen=True, slots=True)
class OrgChoice:
    """An organization as pages name it."""

    id: str
    name: str
    short_id: str


@dataclass(frozen=True, slots=True)
class Frame:
    """What the layout of a page needs: who is signed in, and which organization the page is about."""

    console: ConsoleSession
    org: OrgChoice
    organizations: list[OrgChoice] = field(default_factory=list)
    """Every organization, for a platform administrator's switcher; empty for everyone else."""

    @property
    def base(self) -> str:
        """The URL prefix of this organization's pages."""
        return f"{PREFIX}/orgs/{self.org.id}"

    def can(self, operation: Operation) -> bool:
        """Whether the signed-in user may perform ``operation``."""
        return self.console.can(operation)


async def org_frame(org_id: str, console: Console, session: SessionDep) -> Frame:
    """The frame of a page about organization ``org_id``, after the same organization check as the API's.

    Raises:
        PermissionDeniedError: the organization is not the user's (and the user is no platform administrator).
        NotFoundError: no such organization.
    """
    require_org_access(console.user, org_id)
    organization = await get_organization(session, org_id)
    choices: list[OrgChoice] = []
    if console.user.is_platform_admin:
        choices = [
            OrgChoice(id=each.id, name=each.name, short_id=each.short_id) for each in await list_organizations(session)
        ]
    return Frame(
        console=console,
        org=OrgChoice(id=organization.id, name=organization.name, short_id=organization.short_id),
        organizations=choices,
    )


OrgFrame = Annotated[Frame, Depends(org_frame)]


def is_htmx(request: Request) -> bool:
    """Whether htmx made the request (it then wants a part of a page, not a whole one)."""
    return request.headers.get("hx-request") == "true"


async def after_change(request: Request, location: str, again: Callable[[], Awaitable[Response]]) -> Response:
    """The answer to a change: htmx gets ``again()`` (the part of the page, with its message); a plain form is
    sent to ``location`` (post/redirect/get)."""
    if is_htmx(request):
        return await again()
    return RedirectResponse(location, status_code=303)


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """``template`` rendered with ``context`` (plus ``request``) as an HTML response."""
    html = environment().get_template(template).render({"request": request, **(context or {})})
    return HTMLResponse(html, status_code=status_code, headers=headers)
