"""``WS /ws`` against a real hub: live messages, ping, own filters, heartbeat, refusals, connection limit."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.integration.messaging.conftest import threaded_hub
from tests.support.access import api_token
from tests.support.served import ThreadedHub


async def next_of(ws: ClientConnection, kind: str) -> dict[str, Any]:
    """The next JSON frame of type ``kind`` (heartbeats and other frames are skipped)."""
    while True:
        frame = await asyncio.wait_for(ws.recv(), 30)
        if frame == "pong":
            continue
        data: dict[str, Any] = json.loads(frame)
        if data["type"] == kind:
            return data


async def publish(hub: ThreadedHub, token: str, topic: str, payload: str) -> None:
    async with httpx.AsyncClient(base_url=hub.http_url, headers={"X-API-Key": token}) as client:
        response = await client.post("/publish", json={"topic": topic, "payload": payload})
        assert response.status_code == 200, response.text


async def test_own_filters_replace_the_recorded_feed(shared_hub: ThreadedHub) -> None:
    token = shared_hub.call(api_token(shared_hub.admin))
    async with httpx.AsyncClient(base_url=shared_hub.http_url, headers={"X-API-Key": token}) as client:
        assert (await client.post("/subscribe", json={"topic": "feed/#"})).status_code == 200
    async with connect(shared_hub.ws_url, additional_headers={"X-API-Key": token}) as ws:
        await next_of(ws, "connected")
        await publish(shared_hub, token, "feed/1", "recorded")
        assert (await next_of(ws, "message"))["payload"] == "recorded"

        await ws.send(json.dumps({"action": "subscribe", "topic": "live/+"}))
        assert (await next_of(ws, "subscribed"))["subscriptions"] == ["live/+"]
        await publish(shared_hub, token, "feed/2", "not for this connection now")
        await publish(shared_hub, token, "live/a", "live-only")
        message = await next_of(ws, "message")
        assert (message["topic"], message["payload"], message["id"]) == ("live/a", "live-only", None)

        await ws.send(json.dumps({"action": "unsubscribe", "topic": "live/+"}))
        assert (await next_of(ws, "unsubscribed"))["subscriptions"] == []
        await publish(shared_hub, token, "feed/3", "back to recorded")
        assert (await next_of(ws, "message"))["payload"] == "back to recorded"

        await ws.send("ping")
        assert await asyncio.wait_for(ws.recv(), 30) == "pong"
        await ws.send(json.dumps({"action": "ping"}))
        assert (await next_of(ws, "pong"))["type"] == "pong"


@pytest.mark.parametrize(
    ("command", "error"),
    [
        ("not json", "ping"),
        ("[1, 2]", "JSON object"),
        ('{"action": "dance"}', "actions are"),
        ('{"action": "subscribe", "topic": "a/#/b"}', "'#'"),
        ('{"action": "unsubscribe", "topic": "never/subscribed"}', "not subscribed"),
        ('{"action": "subscribe", "topic": "forbidden/#"}', "not permitted"),
    ],
)
async def test_bad_commands_get_error_frames(shared_hub: ThreadedHub, command: str, error: str) -> None:
    token = shared_hub.call(api_token(shared_hub.admin, subscribe=["allowed/#"], publish=[]))
    async with connect(f"{shared_hub.ws_url}?api_key={token}") as ws:
        await next_of(ws, "connected")
        await ws.send(command)
        assert error in (await next_of(ws, "error"))["error"]
        await ws.send("ping")  # the connection stays usable
        assert await asyncio.wait_for(ws.recv(), 30) == "pong"


async def test_a_token_sees_only_topics_it_may_read(shared_hub: ThreadedHub) -> None:
    org = shared_hub.admin
    writer = shared_hub.call(api_token(org))
    async with httpx.AsyncClient(base_url=shared_hub.http_url, headers={"X-API-Key": writer}) as client:
        await client.post("/subscribe", json={"topic": "scoped/#"})
    reader = shared_hub.call(api_token(org, subscribe=["scoped/public/#"], publish=[]))
    async with connect(f"{shared_hub.ws_url}?token={reader}") as ws:
        await next_of(ws, "connected")
        await publish(shared_hub, writer, "scoped/private/1", "hidden")
        await publish(shared_hub, writer, "scoped/public/1", "visible")
        assert (await next_of(ws, "message"))["payload"] == "visible"


@pytest.mark.parametrize(
    ("query", "status"),
    [("", 401), ("?token=mqh_bogus", 401), ("?api_key=mqh_bogus", 401)],
)
async def test_refused_before_the_handshake(shared_hub: ThreadedHub, query: str, status: int) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(shared_hub.ws_url + query):
            pass
    assert refused.value.response.status_code == status
    assert json.loads(refused.value.response.body or b"")["code"] == "unauthorized"


def test_heartbeat_and_connection_limit(tmp_path: Path) -> None:
    with threaded_hub(tmp_path, ws_heartbeat_interval=0.2, ws_max_connections=2) as hub:
        token = hub.call(api_token(hub.admin))

        async def scenario() -> None:
            async with connect(f"{hub.ws_url}?token={token}") as first, connect(f"{hub.ws_url}?token={token}"):
                hello = await next_of(first, "connected")
                assert hello["heartbeat_interval"] == 0.2
                beat = await next_of(first, "heartbeat")
                assert "timestamp" in beat
                health = httpx.get(hub.http_url + "/health").json()
                assert health["websocket_connections"] == 2
                with pytest.raises(InvalidStatus) as refused:
                    async with connect(f"{hub.ws_url}?token={token}"):
                        pass
                assert refused.value.response.status_code == 503
            # Closed connections free their slots.
            for _ in range(600):
                if httpx.get(hub.http_url + "/health").json()["websocket_connections"] == 0:
                    break
                await asyncio.sleep(0.05)
            async with connect(f"{hub.ws_url}?token={token}") as again:
                await next_of(again, "connected")

        asyncio.run(scenario())


def test_revoking_the_token_ends_the_stream(tmp_path: Path) -> None:
    with threaded_hub(tmp_path, ws_heartbeat_interval=0.2) as hub:
        org = hub.admin
        with hub.http(org.token) as admin:
            created = admin.post(f"/api/v1/organizations/{org.org_id}/mqtt-tokens", json={"name": "app"}).json()

        async def scenario() -> None:
            async with connect(f"{hub.ws_url}?token={created['token']}") as ws:
                await next_of(ws, "connected")
                await next_of(ws, "heartbeat")  # still valid
                with hub.http(org.token) as admin:
                    revoked = admin.delete(f"/api/v1/organizations/{org.org_id}/mqtt-tokens/{created['token_id']}")
                    assert revoked.status_code == 200
                error = await next_of(ws, "error")
                assert error["status"] == 401
                with pytest.raises(ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), 30)
                assert closed.value.rcvd is not None
                assert closed.value.rcvd.code == 1008

        asyncio.run(scenario())
