"""Socket.IO (python-socketio) mounted in the HTTP app at ``/socket.io``: one room per organization.

A client connects with ``auth={"token": "<session token or MQTT API token>"}`` (or
``?token=``); a platform administrator adds ``"organization_id"``. It joins the room
``org:<organization id>`` and receives the same events as ``/api/v1/stream``
(``datastream``, ``telemetry``, ``status``, ``alert``, ``command``), each emitted under
its type with ``{"event", "topic", "data"}`` as the argument. An API token receives only
events whose topic lies within its subscribe permissions.

One bridge task reads a bounded ``drop_oldest`` subscription of the event bus and emits
per room; python-socketio then queues per client, so neither a slow Socket.IO client nor
the bridge can hold up ingestion.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs

import socketio

from mqtthub.broker.episodes import EpisodeLog
from mqtthub.errors import MQTTHubError, StateError
from mqtthub.mqtt.topics import topic_matches
from mqtthub.realtime.access import StreamAuthenticator, StreamIdentity
from mqtthub.realtime.bus import Event, RealtimeBus

logger = logging.getLogger(__name__)
episodes = EpisodeLog()
"""Failures that repeat per message are logged once per episode (see :mod:`mqtthub.broker.episodes`)."""

SOCKETIO_PATH = "socket.io"


def room_of(organization_id: str) -> str:
    """The Socket.IO room of an organization."""
    return f"org:{organization_id}"


class SocketIOGateway:
    """The Socket.IO server and its bridge from the event bus; an async context manager."""

    def __init__(self, bus: RealtimeBus, authenticator: StreamAuthenticator, *, queue_size: int = 10_000) -> None:
        self._bus = bus
        self._authenticator = authenticator
        self._queue_size = queue_size
        self.server = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*", logger=False)
        self.asgi_app = socketio.ASGIApp(self.server, socketio_path=SOCKETIO_PATH)
        self._restricted: dict[str, StreamIdentity] = {}
        self._members: dict[str, int] = {}
        self._organization_of: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.server.on("connect", self._connect)
        self.server.on("disconnect", self._disconnect)

    async def __aenter__(self) -> Self:
        if self._task is not None or self._closed:
            raise StateError("a Socket.IO gateway can be started only once")
        self._task = asyncio.create_task(self._bridge(), name="socketio-bridge")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
        query = parse_qs(environ.get("QUERY_STRING", ""))
        given = auth if isinstance(auth, dict) else {}
        token = given.get("token") or (query.get("token") or [None])[0]
        organization_id = given.get("organization_id") or (query.get("organization_id") or [None])[0]
        try:
            identity = await self._authenticator.identify(token, organization_id)
        except MQTTHubError as exc:
            raise socketio.exceptions.ConnectionRefusedError(exc.message) from None
        if identity.allowed is not None:
            self._restricted[sid] = identity
        await self.server.enter_room(sid, room_of(identity.organization_id))
        self._organization_of[sid] = identity.organization_id
        self._members[identity.organization_id] = self._members.get(identity.organization_id, 0) + 1
        return True

    async def _disconnect(self, sid: str, *args: Any) -> None:
        self._restricted.pop(sid, None)
        organization_id = self._organization_of.pop(sid, None)
        if organization_id is not None:
            left = self._members.get(organization_id, 1) - 1
            if left > 0:
                self._members[organization_id] = left
            else:
                self._members.pop(organization_id, None)

    def _interested(self, organization_id: str) -> bool:
        """Whether a Socket.IO client of the organization is connected (events are built only then)."""
        return organization_id in self._members

    async def _bridge(self) -> None:
        subscriber = self._bus.subscribe_all(interest=self._interested, maxsize=self._queue_size)
        try:
            async for event in subscriber:
                try:
                    await self._emit(event)
                except Exception:
                    episodes(
                        logger,
                        logging.ERROR,
                        ("emit", event.type),
                        "Socket.IO emit of %s failed",
                        event.type,
                        exc_info=True,
                    )
        finally:
            subscriber.close()

    async def _emit(self, event: Event) -> None:
        body = event.to_json()
        room = room_of(event.organization_id)
        if not self._restricted:
            await self.server.emit(event.type, body, room=room)
            return
        # Clients with restricted tokens get only what their permissions cover.
        skip = [
            sid
            for sid, identity in self._restricted.items()
            if identity.organization_id == event.organization_id
            and not any(topic_matches(allowed, event.topic) for allowed in identity.allowed or ())
        ]
        await self.server.emit(event.type, body, room=room, skip_sid=skip or None)
