"""The broker as an administrator sees it: its figures, its connected clients with their subscriptions, and kicks.

Endpoints (session token):

- ``GET    /api/v1/broker`` (users) — the ``$SYS``-level figures of the hub's broker
- ``GET    /api/v1/broker/clients`` (platform admin) — every connected client of the hub
- ``GET    /api/v1/organizations/{org_id}/clients`` (members) — the organization's connected clients
- ``DELETE /api/v1/organizations/{org_id}/clients/{client_id}`` (org admin) — disconnect one
- ``DELETE /api/v1/broker/clients/{client_id}?principal_id=`` (platform admin) — disconnect one of any namespace

An organization's clients are those mounted in its namespace; their topic filters are shown as the clients
wrote them (without the namespace prefix). A client is disconnected with reason code 0x98 (administrative
action) [MQTT-3.14.2-1]; it may connect again, as its credentials still hold (revoke them to keep it out).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, TypeVar

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from mqtthub.auth.deps import AuthenticatedUser, CurrentUser, require_org_access
from mqtthub.auth.organizations import get_organization
from mqtthub.broker.handle import BrokerHandle
from mqtthub.broker.inspection import ClientInfo
from mqtthub.errors import NotFoundError, PermissionDeniedError, StateError, UnavailableError
from mqtthub.messaging.namespace import Namespace, OrgScope
from mqtthub.mqtt.reason_codes import ReasonCode
from mqtthub.web.deps import SessionDep, StateDep
from mqtthub.web.openapi import errors
from mqtthub.web.params import MAX_OFFSET, Limit

T = TypeVar("T")
Skip = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Clients skipped, in client id order.")]
Search = Annotated[
    str, Query(max_length=200, description="Only clients whose id, identity or address contains this text.")
]


class BrokerFigures(BaseModel):
    """The broker's running totals, as its ``$SYS/broker/…`` topics publish them (hub-wide)."""

    uptime: float = Field(description="Seconds since the broker started.")
    clients_connected: int
    clients_total: int = Field(description="Connections accepted since the broker started.")
    messages_received: int
    messages_sent: int
    messages_dropped: int
    bytes_received: int
    bytes_sent: int
    retained_messages: int
    subscriptions: int


class SubscriptionOut(BaseModel):
    """One subscription of a client."""

    topic_filter: str = Field(description="As the client wrote it (without its namespace).")
    qos: int
    share_group: str | None = Field(None, description="The group of a `$share/{group}/…` subscription.")


class ClientOut(BaseModel):
    """A connected client."""

    client_id: str
    kind: str = Field(description="What it authenticated as: device, token, user, certificate, …")
    principal_id: str
    organization_id: str | None
    protocol: str = Field(description='The protocol and listener, e.g. "MQTT 5.0 (tcp)".')
    address: str = Field(description="Its network address; empty when the broker does not say.")
    connected_at: datetime | None
    queued: int = Field(description="Messages waiting in its session.")
    subscriptions: list[SubscriptionOut] = Field(
        description="Its subscriptions (an external broker does not list them: empty)."
    )


class ClientList(BaseModel):
    """One page of the connected clients, by client id."""

    clients: list[ClientOut]
    count: int = Field(description="Clients matching, on every page.")
    offset: int
    limit: int


def _running(read: Callable[[], T]) -> T:
    try:
        return read()
    except StateError as exc:
        raise UnavailableError(f"the MQTT broker is not available: {exc.message}") from None


def broker_figures(broker: BrokerHandle) -> BrokerFigures:
    """The broker's figures now.

    Raises:
        UnavailableError: the broker is not running.
    """
    stats = _running(broker.stats)
    return BrokerFigures(
        uptime=max(time.time() - stats.started_at, 0.0),
        clients_connected=stats.clients_connected,
        clients_total=stats.clients_total,
        messages_received=stats.messages_received,
        messages_sent=stats.messages_sent,
        messages_dropped=stats.messages_dropped,
        bytes_received=stats.bytes_received,
        bytes_sent=stats.bytes_sent,
        retained_messages=stats.retained_messages,
        subscriptions=stats.subscriptions,
    )


def _client_out(info: ClientInfo) -> ClientOut:
    namespace = Namespace(info.principal.mountpoint)
    return ClientOut(
        client_id=info.client_id,
        kind=info.principal.kind,
        principal_id=info.principal.id,
        organization_id=info.principal.organization_id,
        protocol=info.protocol,
        address=info.peer,
        connected_at=None if info.connected_at is None else datetime.fromtimestamp(info.connected_at, UTC),
        queued=info.queued,
        subscriptions=[
            SubscriptionOut(
                topic_filter=namespace.external(each.topic_filter), qos=each.qos, share_group=each.share_group
            )
            for each in info.subscriptions
        ],
    )


def _matches(info: ClientInfo, text: str) -> bool:
    return any(text in value.casefold() for value in (info.client_id, info.principal.id, info.peer))


def list_clients(
    broker: BrokerHandle, namespace: Namespace | None, search: str = "", *, offset: int = 0, limit: int = 100
) -> ClientList:
    """One page of the connected clients of a namespace (every client with ``None``), searched, by client id.

    Raises:
        UnavailableError: the broker is not running.
    """
    text = search.strip().casefold()
    found = [
        info
        for info in _running(broker.connections)
        if (namespace is None or info.principal.mountpoint == namespace.prefix) and (not text or _matches(info, text))
    ]
    found.sort(key=lambda info: (info.client_id, info.principal.id))
    clients = [_client_out(info) for info in found[offset : offset + limit]]
    return ClientList(clients=clients, count=len(found), offset=offset, limit=limit)


def kick_client(
    broker: BrokerHandle, namespace: Namespace | None, client_id: str, principal_id: str | None = None
) -> int:
    """Disconnect the client ``client_id`` (0x98, administrative action); return how many connections closed.

    Client ids are unique within a namespace only: the client is looked for in ``namespace`` (in every one
    with ``None``), and only the connections of ``principal_id`` when it is given.

    Raises:
        NotFoundError: no such client is connected.
        UnavailableError: the broker is not running.
    """
    principals = {
        info.principal.id
        for info in _running(broker.connections)
        if info.client_id == client_id
        and (namespace is None or info.principal.mountpoint == namespace.prefix)
        and (principal_id is None or info.principal.id == principal_id)
    }
    if not principals:
        raise NotFoundError("no client with this id is connected")
    return sum(
        broker.kick(client_id=client_id, principal_id=principal, reason_code=ReasonCode.ADMINISTRATIVE_ACTION)
        for principal in principals
    )


async def organization_scope(session: AsyncSession, organization_id: str) -> OrgScope:
    """The scope (and namespace) of an existing organization.

    Raises:
        NotFoundError: there is no such organization.
    """
    organization = await get_organization(session, organization_id)
    return OrgScope.of(organization.id, organization.short_id)


def _require_platform_admin(user: AuthenticatedUser) -> None:
    if not user.is_platform_admin:
        raise PermissionDeniedError("only a platform administrator acts on every client of the hub")


router = APIRouter(tags=["broker"], responses=errors(401, 403, 503))
MAX_CLIENT_ID = 1024
"""Longest client id the API takes in a path (MQTT allows 65,535 bytes; URLs that long are refused before routing)."""
ClientId = Annotated[
    str, Path(min_length=1, max_length=MAX_CLIENT_ID, description="The MQTT client identifier (URL-encoded).")
]


@router.get("/api/v1/broker", summary="Broker figures")
async def figures(user: CurrentUser, state: StateDep) -> BrokerFigures:
    """Uptime, clients, messages and bytes in and out, retained messages and subscriptions of the hub's broker."""
    return broker_figures(state.broker)


@router.get("/api/v1/broker/clients", summary="Every connected client")
async def all_clients(
    user: CurrentUser, state: StateDep, q: Search = "", offset: Skip = 0, limit: Limit = 100
) -> ClientList:
    """Every client connected to the hub's broker, in every organization (platform administrators)."""
    _require_platform_admin(user)
    return list_clients(state.broker, None, q, offset=offset, limit=limit)


@router.get("/api/v1/organizations/{org_id}/clients", summary="Connected clients", responses=errors(404))
async def org_clients(
    org_id: str,
    user: CurrentUser,
    session: SessionDep,
    state: StateDep,
    q: Search = "",
    offset: Skip = 0,
    limit: Limit = 100,
) -> ClientList:
    """The organization's connected clients with their subscriptions."""
    require_org_access(user, org_id)
    scope = await organization_scope(session, org_id)
    return list_clients(state.broker, scope.namespace, q, offset=offset, limit=limit)


@router.delete(
    "/api/v1/organizations/{org_id}/clients/{client_id:path}",
    status_code=204,
    summary="Disconnect a client",
    responses=errors(404),
)
async def kick(org_id: str, client_id: ClientId, user: CurrentUser, session: SessionDep, state: StateDep) -> Response:
    """Disconnect a client of the organization (org admins); it may connect again with valid credentials."""
    require_org_access(user, org_id, admin=True)
    scope = await organization_scope(session, org_id)
    kick_client(state.broker, scope.namespace, client_id)
    return Response(status_code=204)


@router.delete("/api/v1/broker/clients/{client_id:path}", status_code=204, summary="Disconnect any client")
async def kick_any(
    client_id: ClientId,
    user: CurrentUser,
    state: StateDep,
    principal_id: Annotated[str | None, Query(max_length=400, description="Only this identity's connection.")] = None,
) -> Response:
    """Disconnect a client of any organization, or of the global namespace (platform administrators)."""
    _require_platform_admin(user)
    kick_client(state.broker, None, client_id, principal_id)
    return Response(status_code=204)
