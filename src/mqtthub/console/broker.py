"""The broker page: its ``$SYS``-level figures, live, and the connected clients with their subscriptions and a kick.

An organization's users see the clients in its namespace; a platform administrator sees every client of the
hub, each with its organization. The figures are read from :func:`figures` every two seconds by
``console.js``; the clients list is searched and refreshed by htmx. Each action calls the same functions as
``/api/v1/broker``, ``/api/v1/organizations/{id}/clients`` and ``/api/v1/broker/clients`` after the same
role gate: a kick is an administrator's.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import RedirectResponse, Response

from mqtthub.console.routing import ConsoleRoute
from mqtthub.console.session import PREFIX
from mqtthub.console.templating import OrgFrame, is_htmx, render
from mqtthub.messaging.clients import (
    MAX_CLIENT_ID,
    BrokerFigures,
    ClientOut,
    broker_figures,
    kick_client,
    list_clients,
)
from mqtthub.messaging.namespace import OrgScope
from mqtthub.web.deps import StateDep
from mqtthub.web.params import MAX_OFFSET

PAGE_SIZE = 50
"""Clients per page of the list."""

router = APIRouter(prefix=PREFIX + "/orgs/{org_id}/broker", route_class=ConsoleRoute, include_in_schema=False)


def _by_filter(clients: list[ClientOut]) -> list[tuple[str, list[tuple[ClientOut, int]]]]:
    """Subscriptions grouped by topic filter (``$share/{group}/`` kept in front), each with its clients and QoS."""
    grouped: dict[str, list[tuple[ClientOut, int]]] = defaultdict(list)
    for client in clients:
        for each in client.subscriptions:
            name = each.topic_filter if each.share_group is None else f"$share/{each.share_group}/{each.topic_filter}"
            grouped[name].append((client, each.qos))
    return sorted(grouped.items())


def _scope(frame: OrgFrame) -> OrgScope:
    return OrgScope.of(frame.org.id, frame.org.short_id)


async def _page(
    request: Request, frame: OrgFrame, state: StateDep, search: str, offset: int, message: str | None = None
) -> Response:
    everyone = frame.console.user.is_platform_admin
    listed = list_clients(
        state.broker, None if everyone else _scope(frame).namespace, search, offset=offset, limit=PAGE_SIZE
    )
    context = {
        "frame": frame,
        "nav": "broker",
        "listed": listed,
        "clients": listed.clients,
        "by_filter": _by_filter(listed.clients),
        "q": search,
        "everyone": everyone,
        "org_names": {choice.id: choice.name for choice in frame.organizations},
        "message": message,
    }
    return render(request, "partials/broker_clients.html" if is_htmx(request) else "broker.html", context)


@router.get("", summary="Broker")
async def broker_page(
    request: Request,
    frame: OrgFrame,
    state: StateDep,
    q: Annotated[str, Query(max_length=200)] = "",
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    """The broker's figures and a page of the connected clients (searched by id, identity or address)."""
    return await _page(request, frame, state, q.strip(), offset)


@router.get("/figures", summary="Broker figures")
async def figures(frame: OrgFrame, state: StateDep) -> BrokerFigures:
    """The broker's figures, as JSON for the page."""
    return broker_figures(state.broker)


@router.post("/kick", summary="Disconnect a client")
async def kick(
    request: Request,
    frame: OrgFrame,
    state: StateDep,
    client_id: Annotated[str, Form(min_length=1, max_length=MAX_CLIENT_ID)],
    principal_id: Annotated[str, Form(min_length=1, max_length=400)],
    q: Annotated[str, Form(max_length=200)] = "",
    offset: Annotated[int, Form(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    """Disconnect a client (0x98): one of the organization's, or for a platform administrator any client."""
    namespace = None if frame.console.user.is_platform_admin else _scope(frame).namespace
    kick_client(state.broker, namespace, client_id, principal_id)
    if is_htmx(request):
        return await _page(request, frame, state, q.strip(), offset, message=f"Disconnected {client_id}.")
    return RedirectResponse(f"{frame.base}/broker", status_code=303)
