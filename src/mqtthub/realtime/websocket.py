"""``WS /api/v1/stream``: live telemetry events of one organization as JSON.

Authentication: ``Authorization: Bearer <token>``, ``?token=<token>``, the web console's session cookie,
or a first message ``{"action": "auth", "token": "<token>"}`` (browsers cannot set headers). The token is a
session token (JWT) or an MQTT API token; a platform administrator adds
``organization_id``.

Messages from the client::

    {"action": "subscribe", "topics": ["devices/+/datastream", "device/+/telemetry/#"]}
    {"action": "unsubscribe", "topics": ["devices/+/datastream"]}
    {"action": "ping"}

``?topics=a,b`` subscribes at once; ``?overflow=drop_oldest|disconnect`` names what happens when the
client falls behind (below). Messages to the client::

    {"event": "ready", "organizationId": "...", "topics": [...]}
    {"event": "subscribed", "topics": [...]}                       (the whole current set)
    {"event": "datastream" | "telemetry" | "status" | "alert" | "command", "topic": "...", "data": {...}}
    {"event": "dropped", "count": 12}     (the client was too slow; that many events were discarded)
    {"event": "error", "error": "...", "code": "..."}
    {"event": "pong"}

Each client has a bounded queue (``MQTTHUB_REALTIME_QUEUE_SIZE``) in the shared fan-out, so ingestion never
waits for it. With ``drop_oldest`` (the default) a slow client misses events and is told how many; with
``disconnect`` it gets ``{"event": "error", "code": "too_slow", ...}`` and the connection closes with code
1013 (try again later).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, WebSocket, WebSocketDisconnect

from mqtthub.auth.cookie import session_cookie
from mqtthub.errors import MQTTHubError, ValidationFailedError
from mqtthub.realtime.access import StreamAuthenticator, StreamIdentity
from mqtthub.realtime.bus import Event, RealtimeBus
from mqtthub.realtime.fanout import SLOW_CLIENT_CLOSE_CODE, SLOW_CLIENT_GRACE, Subscriber, overflow_policy
from mqtthub.web.deps import DatabaseDep, SecretsDep
from mqtthub.web.state import provide

RealtimeDep = Annotated[RealtimeBus, Depends(provide(RealtimeBus))]

logger = logging.getLogger(__name__)

router = APIRouter()

AUTH_TIMEOUT = 10.0
CLOSE_POLICY_VIOLATION = 1008


def _topics(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationFailedError("topics must be a list of topic filters", field="topics")
    return value


async def _send_error(websocket: WebSocket, exc: MQTTHubError) -> None:
    await websocket.send_json({"event": "error", "error": exc.message, "code": exc.code})


async def _authenticate(websocket: WebSocket, authenticator: StreamAuthenticator) -> StreamIdentity:
    header = websocket.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    token = value.strip() if scheme.lower() == "bearer" else None
    token = token or websocket.query_params.get("token") or session_cookie(websocket)
    organization_id = websocket.query_params.get("organization_id")
    if not token:
        message = await asyncio.wait_for(websocket.receive_json(), AUTH_TIMEOUT)
        if isinstance(message, dict) and message.get("action") == "auth":
            token = message.get("token") if isinstance(message.get("token"), str) else None
            organization_id = message.get("organization_id") or organization_id
    return await authenticator.identify(token, organization_id)


async def _pump(websocket: WebSocket, subscriber: Subscriber[Event]) -> None:
    async for event in subscriber:
        dropped = subscriber.take_dropped()
        if dropped:
            await websocket.send_json({"event": "dropped", "count": dropped})
        await websocket.send_json(event.to_json())


def _filters(subscriber: Subscriber[Event]) -> tuple[str, ...]:
    # Stream subscribers always name their filters (an empty set receives nothing); None is the /ws feed.
    return subscriber.filters or ()


async def _listen(websocket: WebSocket, identity: StreamIdentity, subscriber: Subscriber[Event]) -> None:
    while True:
        raw = await websocket.receive_text()
        try:
            message = json.loads(raw)
            if not isinstance(message, dict):
                raise ValidationFailedError("messages must be JSON objects", field="action")
            action = message.get("action")
            if action == "ping":
                await websocket.send_json({"event": "pong"})
                continue
            if action == "subscribe":
                wanted = identity.check(_topics(message.get("topics")))
                subscriber.set_filters([*_filters(subscriber), *wanted])
            elif action == "unsubscribe":
                removed = set(_topics(message.get("topics")))
                subscriber.set_filters([f for f in _filters(subscriber) if f not in removed])
            else:
                raise ValidationFailedError("action must be subscribe, unsubscribe or ping", field="action")
            await websocket.send_json({"event": "subscribed", "topics": list(_filters(subscriber))})
        except ValueError:
            await websocket.send_json({"event": "error", "error": "messages must be JSON", "code": "validation_error"})
        except MQTTHubError as exc:
            await _send_error(websocket, exc)


@router.websocket("/api/v1/stream")
async def stream(websocket: WebSocket, bus: RealtimeDep, database: DatabaseDep, secrets: SecretsDep) -> None:
    """See the module docstring."""
    await websocket.accept()
    try:
        identity = await _authenticate(websocket, StreamAuthenticator(database, secrets))
        initial = [t for t in websocket.query_params.get("topics", "").split(",") if t]
        policy = overflow_policy(websocket.query_params.get("overflow"))
        subscriber = bus.subscribe(identity.organization_id, identity.check(initial), policy=policy)
    except (MQTTHubError, TimeoutError, ValueError, WebSocketDisconnect) as exc:
        if isinstance(exc, MQTTHubError):
            with contextlib.suppress(Exception):
                await _send_error(websocket, exc)
        with contextlib.suppress(Exception):
            await websocket.close(CLOSE_POLICY_VIOLATION)
        return
    try:
        await websocket.send_json(
            {"event": "ready", "organizationId": identity.organization_id, "topics": list(_filters(subscriber))}
        )
        async with asyncio.TaskGroup() as tasks:
            running = {
                tasks.create_task(_pump(websocket, subscriber), name="stream-pump"),
                tasks.create_task(_listen(websocket, identity, subscriber), name="stream-listen"),
                tasks.create_task(subscriber.wait_closed(), name="stream-overflow"),
            }
            await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in running:
                task.cancel()
        if subscriber.overflowed:
            # The pump may have been waiting on the slow client's socket; these frames queue behind what it
            # has not read yet, and the hub waits only so long for it to take them.
            async with asyncio.timeout(SLOW_CLIENT_GRACE):
                await websocket.send_json({"event": "error", "error": subscriber.overflow_message, "code": "too_slow"})
                await websocket.close(SLOW_CLIENT_CLOSE_CODE)
    except* (WebSocketDisconnect, RuntimeError, OSError, TimeoutError):
        pass
    finally:
        subscriber.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(SLOW_CLIENT_GRACE):  # a client that reads nothing cannot hold the task
                await websocket.close()
