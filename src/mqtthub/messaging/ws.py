"""``WS /ws``: the live message stream of the caller's organization.

Protocol (JSON text frames unless noted):

- on connect the server sends ``{"type": "connected", "subscriptions": [...], "heartbeat_interval": s}``;
- every message arrives as ``{"type": "message", "id", "topic", "payload", "payload_encoding", "qos",
  "retain", "timestamp"}``; by default these are the messages the organization records (``POST /subscribe``);
- the client sends ``{"action": "subscribe", "topic": "<filter>"}`` to receive that filter's messages
  instead (live only, not recorded); ``{"action": "unsubscribe", "topic": ...}`` removes one, and with none
  left the connection follows the recorded messages again; each is answered ``subscribed``/``unsubscribed``
  or ``{"type": "error", "error": ...}``;
- the text ``ping`` is answered with the text ``pong``; every ``ws_heartbeat_interval`` seconds the server
  checks the credentials again and sends ``{"type": "heartbeat", "timestamp": ...}``; once they are revoked or
  expired it sends ``{"type": "error", "status": 401, ...}`` and closes the connection (code 1008).

Credentials are the same as for REST (headers), or ``?api_key=``/``?token=`` for clients that cannot set
headers. Refusals happen before the handshake completes, as HTTP responses: 401, 403, 429, and 503 when
``ws_max_connections`` connections are open or the broker is down.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse

from mqtthub.broker.handle import LocalSubscription
from mqtthub.errors import MQTTHubError, PermissionDeniedError, UnauthenticatedError, UnavailableError
from mqtthub.messaging.auth import Caller, resolve_caller
from mqtthub.messaging.deps import MessagingDep
from mqtthub.messaging.live import LiveListener
from mqtthub.messaging.namespace import check_topic_filter
from mqtthub.web.deps import DatabaseDep, SettingsDep
from mqtthub.web.errors import error_body

if TYPE_CHECKING:
    from mqtthub.messaging.service import MessagingService

logger = logging.getLogger(__name__)

MAX_FILTERS_PER_CONNECTION = 64

router = APIRouter(tags=["messaging"])


def _bearer(websocket: WebSocket) -> str | None:
    scheme, _, value = websocket.headers.get("authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


async def _deny(websocket: WebSocket, error: MQTTHubError) -> None:
    headers = {"Retry-After": "1"} if error.status_code in (429, 503) else None
    await websocket.send_denial_response(
        JSONResponse(error_body(error.message, error.code), status_code=error.status_code, headers=headers)
    )


class _Connection:
    """One accepted WebSocket client: its listener, own filters and the lock serializing its sends."""

    def __init__(self, websocket: WebSocket, service: MessagingService, caller: Caller) -> None:
        self.websocket = websocket
        self.service = service
        self.caller = caller
        self.listener = LiveListener(caller.organization_id, readable=caller.readable)
        self.own: dict[str, LocalSubscription] = {}
        self._send_lock = asyncio.Lock()

    async def send(self, data: str | dict[str, Any]) -> None:
        text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
        async with self._send_lock:
            await self.websocket.send_text(text)

    async def forward(self) -> None:
        while True:
            await self.send(await self.listener.get())

    async def heartbeat(self, interval: float, recheck: Callable[[], Awaitable[object]]) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await recheck()
            except (UnauthenticatedError, PermissionDeniedError) as exc:
                await self.send({"type": "error", "status": exc.status_code, "error": exc.message})
                await self.websocket.close(code=1008, reason="credentials no longer valid")
                raise WebSocketDisconnect(code=1008) from None
            await self.send({"type": "heartbeat", "timestamp": datetime.now(UTC).isoformat()})

    async def receive(self) -> NoReturn:
        while True:
            text = await self.websocket.receive_text()
            if text.strip().lower() == "ping":
                await self.send("pong")
                continue
            await self.send(self.command(text))

    def command(self, text: str) -> dict[str, Any]:
        try:
            request = json.loads(text)
        except ValueError:
            return {"type": "error", "error": "send 'ping' or a JSON object with an action"}
        if not isinstance(request, dict):
            return {"type": "error", "error": "send a JSON object with an action"}
        action = request.get("action", request.get("type"))
        if action == "ping":
            return {"type": "pong"}
        topic = request.get("topic")
        if action not in ("subscribe", "unsubscribe") or not isinstance(topic, str):
            return {"type": "error", "error": "actions are subscribe and unsubscribe, each with a topic"}
        try:
            check_topic_filter(topic)
        except ValueError as exc:
            return {"type": "error", "action": action, "topic": topic, "error": str(exc)}
        if action == "subscribe":
            return self.subscribe(topic)
        return self.unsubscribe(topic)

    def subscribe(self, topic: str) -> dict[str, Any]:
        if not self.caller.can_subscribe(topic):
            return {"type": "error", "action": "subscribe", "topic": topic, "error": "not permitted", "status": 403}
        if topic not in self.own:
            if len(self.own) >= MAX_FILTERS_PER_CONNECTION:
                return {"type": "error", "action": "subscribe", "topic": topic, "error": "too many filters"}
            try:
                self.own[topic] = self.service.subscribe_live(self.caller.scope, topic, self.listener)
            except UnavailableError as exc:
                return {"type": "error", "action": "subscribe", "topic": topic, "error": exc.message, "status": 503}
        self.listener.narrowed = True
        return {"type": "subscribed", "topic": topic, "subscriptions": sorted(self.own)}

    def unsubscribe(self, topic: str) -> dict[str, Any]:
        handle = self.own.pop(topic, None)
        if handle is None:
            return {"type": "error", "action": "unsubscribe", "topic": topic, "error": "not subscribed"}
        self.service.unsubscribe_live(handle)
        self.listener.narrowed = bool(self.own)
        return {"type": "unsubscribed", "topic": topic, "subscriptions": sorted(self.own)}

    def close(self) -> None:
        for handle in self.own.values():
            self.service.unsubscribe_live(handle)
        self.own.clear()


@router.websocket("/ws")
async def stream(websocket: WebSocket, service: MessagingDep, database: DatabaseDep, settings: SettingsDep) -> None:
    """The live stream; see the module docstring for the protocol."""

    async def authenticate(rate_limited: bool = True) -> Caller:
        async with database.session() as session:
            return await resolve_caller(
                websocket,
                session,
                api_key=websocket.headers.get("x-api-key"),
                bearer=_bearer(websocket),
                query=websocket.query_params,
                rate_limited=rate_limited,
            )

    try:
        caller = await authenticate()
        if service.feed.count() >= settings.ws_max_connections:
            raise UnavailableError("too many WebSocket connections")
        service.broker()
    except MQTTHubError as exc:
        await _deny(websocket, exc)
        return
    connection = _Connection(websocket, service, caller)
    service.feed.attach(connection.listener)
    try:
        await websocket.accept()
        await connection.send(
            {
                "type": "connected",
                "subscriptions": [f for f in service.filters(caller.organization_id) if caller.can_subscribe(f)],
                "heartbeat_interval": settings.ws_heartbeat_interval,
            }
        )
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(connection.forward(), name="ws-forward")
            tasks.create_task(
                connection.heartbeat(settings.ws_heartbeat_interval, lambda: authenticate(rate_limited=False)),
                name="ws-heartbeat",
            )
            await connection.receive()  # returns only by raising: the client went away
    except* WebSocketDisconnect:
        pass
    except* (RuntimeError, OSError) as group:
        logger.debug("WebSocket client gone: %r", group.exceptions)
    finally:
        service.feed.detach(connection.listener)
        connection.close()
