"""Socket.IO (python-socketio) mounted in the HTTP app at ``/socket.io``: the live events of one organization.

A client connects with ``auth={"token": "<session token or MQTT API token>"}`` (or
``?token=``); a platform administrator adds ``"organization_id"``. It receives the same events as
``/api/v1/stream`` (``datastream``, ``telemetry``, ``status``, ``alert``, ``command``), each emitted under
its type with ``{"event", "topic", "data"}`` as the argument. An API token receives only events whose topic
lies within its subscribe permissions.

Each client has its own subscriber in the shared fan-out (bounded queue, overflow policy) and its own sender,
which emits the next event only once Engine.IO has handed the previous one to the transport: a client that
stops reading fills its own queue, never the hub's memory, and never holds up ingestion or other clients.
``"overflow": "disconnect"`` in ``auth`` (or ``?overflow=``) chooses the disconnect policy; with the default,
``drop_oldest``, a slow client gets ``dropped`` with ``{"event": "dropped", "count": n}`` before the next
event; with ``disconnect`` it gets ``error`` with ``{"event": "error", "code": "too_slow", ...}`` and is
disconnected.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs

import socketio

from mqtthub.background import BackgroundTasks
from mqtthub.errors import MQTTHubError
from mqtthub.realtime.access import StreamAuthenticator
from mqtthub.realtime.bus import Event, RealtimeBus
from mqtthub.realtime.fanout import SLOW_CLIENT_GRACE, Subscriber, overflow_policy

logger = logging.getLogger(__name__)

SOCKETIO_PATH = "socket.io"
NAMESPACE = "/"


class SocketIOGateway:
    """The Socket.IO server and one sender per connected client; an async context manager."""

    def __init__(self, bus: RealtimeBus, authenticator: StreamAuthenticator) -> None:
        self._bus = bus
        self._authenticator = authenticator
        self.server = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*", logger=False)
        self.asgi_app = socketio.ASGIApp(self.server, socketio_path=SOCKETIO_PATH)
        self._subscribers: dict[str, Subscriber[Event]] = {}
        self._tasks = BackgroundTasks("socketio")
        self.server.on("connect", self._connect)
        self.server.on("disconnect", self._disconnect)

    async def __aenter__(self) -> Self:
        await self._tasks.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for subscriber in self._subscribers.values():
            subscriber.close()
        await self._tasks.close()

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
        query = parse_qs(environ.get("QUERY_STRING", ""))
        given = auth if isinstance(auth, dict) else {}

        def option(name: str) -> Any:
            return given.get(name) or (query.get(name) or [None])[0]

        try:
            identity = await self._authenticator.identify(option("token"), option("organization_id"))
            policy = overflow_policy(option("overflow"))
        except MQTTHubError as exc:
            raise socketio.exceptions.ConnectionRefusedError(exc.message) from None
        subscriber = self._bus.subscribe(identity.organization_id, ("#",), allowed=identity.allowed, policy=policy)
        self._subscribers[sid] = subscriber
        self._tasks.spawn(f"client-{sid}", self._serve(sid, subscriber))
        return True

    async def _disconnect(self, sid: str, *args: Any) -> None:
        subscriber = self._subscribers.pop(sid, None)
        if subscriber is not None:
            subscriber.close()

    async def _serve(self, sid: str, subscriber: Subscriber[Event]) -> None:
        """Send one client its events until it leaves or the overflow policy drops it."""
        try:
            async with asyncio.TaskGroup() as tasks:
                sender = tasks.create_task(self._send(sid, subscriber), name=f"socketio-send-{sid}")
                # The sender may be waiting on a client that reads nothing: the end is noticed apart from it.
                await subscriber.wait_closed()
                sender.cancel()
            if subscriber.overflowed:
                body = {"event": "error", "error": subscriber.overflow_message, "code": "too_slow"}
                async with asyncio.timeout(SLOW_CLIENT_GRACE):
                    await self.server.emit("error", body, to=sid)
                    await self.server.disconnect(sid)
        finally:
            subscriber.close()

    async def _send(self, sid: str, subscriber: Subscriber[Event]) -> None:
        async for event in subscriber:
            dropped = subscriber.take_dropped()
            if dropped:
                await self._emit(sid, "dropped", {"event": "dropped", "count": dropped})
            await self._emit(sid, event.type, event.to_json())

    async def _emit(self, sid: str, name: str, body: Mapping[str, object]) -> None:
        await self.server.emit(name, body, to=sid)
        # Engine.IO queues packets without bound; waiting until the transport took them keeps the backlog
        # of a slow client in its bounded fan-out queue.
        eio_sid = self.server.manager.eio_sid_from_sid(sid, NAMESPACE)
        socket = self.server.eio.sockets.get(eio_sid)
        if socket is not None:
            await socket.queue.join()
