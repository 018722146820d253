"""MQTT API tokens of the organization: create one with its topic filters and expiry, list them, revoke one.

Apps connect with such a token as MQTT user name and password. Each action calls the same functions as
``/api/v1/organizations/{id}/mqtt-tokens`` after the same role gate (administrators, listing included). A new
token's secret is shown once, in the answer to the request that created it; revoking ends the connections
made with it at once.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from mqtthub.auth.acl import DEFAULT_APP_SUBSCRIBE
from mqtthub.auth.mqtt_tokens import get_api_token, issue_api_token, list_api_tokens, revoke_api_token
from mqtthub.console.routing import ConsoleRoute
from mqtthub.console.session import PREFIX
from mqtthub.console.templating import OrgFrame, is_htmx, render
from mqtthub.web.deps import SecretsDep, SessionDep

router = APIRouter(prefix=PREFIX + "/orgs/{org_id}/mqtt-tokens", route_class=ConsoleRoute, include_in_schema=False)


def _filters(text: str) -> list[str]:
    """Topic filters typed one a line (blank lines ignored)."""
    return [line.strip() for line in text.splitlines() if line.strip()]


async def _page(request: Request, frame: OrgFrame, session: SessionDep, new_token: str | None = None) -> Response:
    context = {
        "frame": frame,
        "nav": "mqtt-tokens",
        "tokens": await list_api_tokens(session, frame.org.id),
        "new_token": new_token,
        "default_subscribe": "\n".join(DEFAULT_APP_SUBSCRIBE),
    }
    return render(request, "partials/api_tokens.html" if is_htmx(request) else "api_tokens.html", context)


@router.get("", summary="MQTT API tokens")
async def tokens_page(request: Request, frame: OrgFrame, session: SessionDep) -> Response:
    """The organization's MQTT API tokens, with when each was last used."""
    return await _page(request, frame, session)


@router.post("", summary="Create an MQTT API token")
async def create(
    request: Request,
    frame: OrgFrame,
    session: SessionDep,
    secrets: SecretsDep,
    name: Annotated[str, Form(min_length=1, max_length=200)],
    description: Annotated[str, Form(max_length=1000)] = "",
    expires_in_days: Annotated[int, Form(ge=1, le=3650)] = 90,
    subscribe: Annotated[str, Form(max_length=20_000)] = "",
    publish: Annotated[str, Form(max_length=20_000)] = "",
) -> Response:
    """A new token with its filters; its secret is in this answer only."""
    issued = await issue_api_token(
        session,
        secrets,
        frame.org.id,
        name=name.strip(),
        description=description.strip(),
        lifetime=timedelta(days=expires_in_days),
        subscribe=_filters(subscribe),
        publish=_filters(publish),
        created_by=frame.console.user.id,
    )
    return await _page(request, frame, session, new_token=issued.token)


@router.post("/{token_id}/revoke", summary="Revoke an MQTT API token")
async def revoke(request: Request, token_id: str, frame: OrgFrame, session: SessionDep) -> Response:
    """Revoke the token; clients connected with it are disconnected at once."""
    await revoke_api_token(session, await get_api_token(session, frame.org.id, token_id))
    if is_htmx(request):
        return await _page(request, frame, session)
    return RedirectResponse(f"{frame.base}/mqtt-tokens", status_code=303)
