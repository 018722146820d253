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
  expired it sends ``{"type": "error", "status": 401, ...}`` and closes the connection (code 1008);
- each connection has a bounded queue (``realtime_queue_size``) in the shared live fan-out, so the broker never
  waits for it. ``?overflow=`` names what happens when the client falls behind: ``drop_oldest`` (the default)
  discards its oldest queued messages and then tells it ``{"type": "dropped", "count": n}``; ``disconnect`` sends
  ``{"type": "error", "code": "too_slow", ...}`` and closes the connection with code 1013 (try again later).

Credentials are the same as for REST (headers), or ``?api_key=``/``?token=`` for clients that cannot set
headers, or the web console's session cookie; a platform administrator may add ``?organization_id=`` to follow
another organization. Refusals happen before the handshake completes, as HTTP responses: 401, 403, 422 (an unknown
``overflow``), 429, and 503 when ``ws_max_connections`` connections are open or the broker is down.
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

from mqtthub.auth.cookie import session_cookie
from mqtthub.errors import MQTTHubError, PermissionDeniedError, UnauthenticatedError, UnavailableError
from mqtthub.messaging.auth import Caller, resolve_caller
from mqtthub.messaging.deps import MessagingDep
from mqtthub.messaging.live import LiveMessage
from mqtthub.messaging.namespace import check_topic_filter
from mqtthub.realtime.fanout import (
    MAX_FILTERS,
    SLOW_CLIENT_CLOSE_CODE,
    SLOW_CLIENT_GRACE,
    OverflowPolicy,
    Subscriber,
    overflow_policy,
)
from mqtthub.web.deps import DatabaseDep, SettingsDep
from mqtthub.web.errors import error_body

if TYPE_CHECKING:
    from mqtthub.messaging.service import MessagingService

logger = logging.getLogger(__name__)

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
    """One accepted WebSocket client: its fan-out subscriber, own filters and the lock serializing its sends.

    The subscriber follows the organization's recorded messages until the client names filters of its own.
    """

    def __init__(self, websocket: WebSocket, service: MessagingService, caller: Caller, policy: OverflowPolicy) -> None:
        self.websocket = websocket
        self.service = service
        self.caller = caller
        self.subscriber: Subscriber[LiveMessage] = service.live.subscribe(
            caller.organization_id, None, allowed=caller.readable, policy=policy
        )
        self.own: set[str] = set()
        self._send_lock = asyncio.Lock()

    async def send(self, data: str | dict[str, Any]) -> None:
        text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
        async with self._send_lock:
            await self.websocket.send_text(text)

    async def forward(self) -> None:
        async for message in self.subscriber:
            dropped = self.subscriber.take_dropped()
            if dropped:
                await self.send({"type": "dropped", "count": dropped})
            await self.send(message.text)

    async def end_overflowed(self) -> None:
        """Tell a client the DISCONNECT policy dropped why, and close; bounded, as the client may read nothing."""
        async with asyncio.timeout(SLOW_CLIENT_GRACE):
            await self.send({"type": "error", "error": self.subscriber.overflow_message, "code": "too_slow"})
            await self.websocket.close(code=SLOW_CLIENT_CLOSE_CODE, reason="too slow")

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
            if len(self.own) >= MAX_FILTERS:
                return {"type": "error", "action": "subscribe", "topic": topic, "error": "too many filters"}
            try:
                self.service.follow(self.caller.scope, topic)
            except UnavailableError as exc:
                return {"type": "error", "action": "subscribe", "topic": topic, "error": exc.message, "status": 503}
            self.own.add(topic)
        self.subscriber.set_filters(sorted(self.own))
        return {"type": "subscribed", "topic": topic, "subscriptions": sorted(self.own)}

    def unsubscribe(self, topic: str) -> dict[str, Any]:
        if topic not in self.own:
            return {"type": "error", "action": "unsubscribe", "topic": topic, "error": "not subscribed"}
        self.own.discard(topic)
        self.service.unfollow(self.caller.scope, topic)
        # With no filters of its own left, the connection follows the recorded messages again.
        self.subscriber.set_filters(sorted(self.own) if self.own else None)
        return {"type": "unsubscribed", "topic": topic, "subscriptions": sorted(self.own)}

    def close(self) -> None:
        self.subscriber.close()
        for topic in self.own:
            self.service.unfollow(self.caller.scope, topic)
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
                bearer=_bearer(websocket) or session_cookie(websocket),
                query=websocket.query_params,
                rate_limited=rate_limited,
            )

    try:
        caller = await authenticate()
        policy = overflow_policy(websocket.query_params.get("overflow"))
        if service.live.count() >= settings.ws_max_connections:
            raise UnavailableError("too many WebSocket connections")
        service.require_broker()
    except MQTTHubError as exc:
        await _deny(websocket, exc)
        return
    connection = _Connection(websocket, service, caller, policy)
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
            running = {
                tasks.create_task(connection.forward(), name="ws-forward"),
                tasks.create_task(
                    connection.heartbeat(settings.ws_heartbeat_interval, lambda: authenticate(rate_limited=False)),
                    name="ws-heartbeat",
                ),
                tasks.create_task(connection.receive(), name="ws-receive"),
                # The forwarder may be stuck on a slow client's socket: the overflow is noticed apart from it.
                tasks.create_task(connection.subscriber.wait_closed(), name="ws-overflow"),
            }
            await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in running:
                task.cancel()
        if connection.subscriber.overflowed:
            await connection.end_overflowed()
    except* (WebSocketDisconnect, TimeoutError):
        pass
    except* (RuntimeError, OSError) as group:
        logger.debug("WebSocket client gone: %r", group.exceptions)
    finally:
        connection.close()
