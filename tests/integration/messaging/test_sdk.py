"""The SDK over real HTTP and WebSocket against a running hub: sync, async and stream clients."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest
from websockets.asyncio.server import ServerConnection, serve

from mqtthub.client import (
    AsyncHubClient,
    AsyncMQTTAPIClient,
    AuthenticationError,
    ClientStateError,
    HubClient,
    HubConnectionError,
    Message,
    MQTTAPIClient,
    MQTTWebSocketClient,
    NotFoundError,
    PermissionDeniedError,
    PublishResult,
    RateLimitedError,
    StreamClient,
    ValidationError,
)
from tests.integration.messaging.conftest import threaded_hub
from tests.support.access import ADMIN_EMAIL, ADMIN_PASSWORD, api_token
from tests.support.served import ThreadedHub


def test_sync_client_as_documented(shared_hub: ThreadedHub) -> None:
    token = shared_hub.call(api_token(shared_hub.admin))
    with MQTTAPIClient(shared_hub.http_url, api_key=token) as client:
        health = client.health_check()
        assert health.status == "healthy"
        assert health.mqtt_connected is True
        assert client.subscribe("sdk/sync/#").success
        result = client.publish("sdk/sync/topic", "Hello, MQTT!")
        assert isinstance(result, PublishResult)
        assert result.payload_size == len("Hello, MQTT!")
        client.publish("sdk/sync/binary", b"\x00\xff", qos=1)
        client.publish("sdk/sync/json", {"a": [1, 2]}, retain=True)
        page = client.get_messages(limit=10, topic="sdk/sync/#")
        assert [m.topic for m in page.messages] == ["sdk/sync/json", "sdk/sync/binary", "sdk/sync/topic"]
        assert page.messages[1].payload_bytes == b"\x00\xff"
        assert json.loads(page.messages[0].payload) == {"a": [1, 2]}
        assert page.messages[0].retain is True
        assert client.get_messages("sdk/sync/topic", since=page.messages[2].timestamp).total == 1
        assert "sdk/sync/#" in client.get_topics().subscriptions
        assert client.get_stats().topic_counts["sdk/sync/topic"] == 1
        assert client.unsubscribe("sdk/sync/#").success
        with pytest.raises(NotFoundError) as missing:
            client.unsubscribe("sdk/sync/#")
        assert missing.value.status_code == 404
        assert missing.value.body["code"] == "not_found"
        with pytest.raises(ValidationError) as invalid:
            client.publish("bad/+/topic", "x")
        assert invalid.value.errors[0]["loc"] == ["body", "topic"]
        info = client.get_service_info()
        assert info.service == "mqtthub"
        assert client.request("GET", "/stats")["mqtt_connected"] is True
    with pytest.raises(ClientStateError):
        client.get_stats()
    with pytest.raises(ClientStateError), client:
        pass


def test_sync_client_errors_and_login(shared_hub: ThreadedHub) -> None:
    with HubClient(shared_hub.http_url) as anonymous:
        with pytest.raises(AuthenticationError) as refused:
            anonymous.get_stats()
        assert refused.value.status_code == 401
        session = anonymous.login(ADMIN_EMAIL, ADMIN_PASSWORD)
        assert session.user.email == ADMIN_EMAIL
        assert anonymous.get_stats().mqtt_connected is True  # later calls carry the session token
        organizations = anonymous.list_organizations()
        assert shared_hub.admin.org_id in [o.id for o in organizations.organizations]
        assert anonymous.get_organization(shared_hub.admin.org_id).short_id == shared_hub.admin.short_id
    read_only = shared_hub.call(api_token(shared_hub.admin, subscribe=["#"], publish=[]))
    with HubClient(shared_hub.http_url, token=read_only) as client, pytest.raises(PermissionDeniedError):
        client.publish("anything", "x")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with HubClient(f"http://127.0.0.1:{closed_port}", timeout=5) as nowhere, pytest.raises(HubConnectionError):
        nowhere.health_check()


async def test_async_client_as_documented(shared_hub: ThreadedHub) -> None:
    token = shared_hub.call(api_token(shared_hub.admin))
    async with AsyncMQTTAPIClient(shared_hub.http_url, token=token) as client:
        assert (await client.health_check()).mqtt_connected
        assert (await client.subscribe("sdk/async/topic", qos=1)).qos == 1
        result = await client.publish("sdk/async/topic", "Hello, Async MQTT!")
        assert result.topic == "sdk/async/topic"
        page = await client.get_messages(topic="sdk/async/topic")
        assert page.messages[0].payload == "Hello, Async MQTT!"
        assert (await client.get_topics()).topics
        assert (await client.get_stats()).total_messages >= 1
        with pytest.raises(ValidationError):
            await client.get_messages(limit=0)
    with pytest.raises(ClientStateError):
        await client.get_stats()
    async with AsyncHubClient(shared_hub.http_url) as anonymous:
        with pytest.raises(AuthenticationError):
            await anonymous.get_topics()


def test_rate_limit_surfaces_retry_after(tmp_path: Path) -> None:
    with threaded_hub(tmp_path, api_rate_limit=0.2, api_rate_burst=1) as hub:
        token = hub.call(api_token(hub.admin))
        with HubClient(hub.http_url, api_key=token) as client:
            client.get_topics()
            with pytest.raises(RateLimitedError) as limited:
                client.get_topics()
            assert limited.value.retry_after is not None
            assert limited.value.retry_after >= 1


async def test_stream_with_a_handler_as_documented(shared_hub: ThreadedHub) -> None:
    token = shared_hub.call(api_token(shared_hub.admin))
    received: list[Message] = []
    done = asyncio.Event()

    async def message_handler(data: Message) -> None:
        received.append(data)
        done.set()

    client = MQTTWebSocketClient(shared_hub.http_url, api_key=token, message_handler=message_handler)
    await client.connect()
    listening = asyncio.create_task(client.listen())
    await client.subscribe("sdk/stream/+")
    async with AsyncHubClient(shared_hub.http_url, api_key=token) as http:
        # The filter is sent as a WebSocket frame; publish until the hub has applied it.
        for attempt in range(100):
            await http.publish("sdk/stream/a", f"m{attempt}")
            try:
                await asyncio.wait_for(done.wait(), 0.3)
                break
            except TimeoutError:
                continue
    await client.disconnect()
    await asyncio.wait_for(listening, 30)
    assert received[0].topic == "sdk/stream/a"
    assert not client.connected
    with pytest.raises(ClientStateError):
        await client.connect()


async def test_stream_iteration_and_refused_credentials(shared_hub: ThreadedHub) -> None:
    token = shared_hub.call(api_token(shared_hub.admin))
    async with AsyncHubClient(shared_hub.http_url, api_key=token) as http:
        await http.subscribe("sdk/iter/#")
        async with StreamClient(shared_hub.http_url, api_key=token) as stream:
            await stream.ping()
            await http.publish("sdk/iter/1", "one")
            await http.publish("sdk/iter/2", "two")
            payloads = []
            async for message in stream:
                payloads.append(message.payload)
                if len(payloads) == 2:
                    break
    assert payloads == ["one", "two"]
    with pytest.raises(AuthenticationError):
        await StreamClient(shared_hub.http_url, api_key="mqh_wrong").connect()


async def test_stream_reconnects_with_backoff_and_subscribes_again() -> None:
    """A real WebSocket server that drops the first connection: the client comes back and re-sends its filters."""
    connections: list[list[str]] = []

    async def handler(ws: ServerConnection) -> None:
        seen: list[str] = []
        connections.append(seen)
        seen.append(str(await ws.recv()))  # the subscribe frame
        if len(connections) == 1:
            await ws.close()
            return
        frame = {
            "type": "message",
            "topic": "r/1",
            "payload": "after reconnect",
            "qos": 0,
            "retain": False,
            "timestamp": "2026-01-01T00:00:00Z",
        }
        await ws.send(json.dumps(frame))
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        stream = StreamClient(f"http://127.0.0.1:{port}", topics=["r/#"], initial_backoff=0.05, max_backoff=0.2)
        async with stream:
            message = await asyncio.wait_for(anext(aiter(stream)), 30)
        assert message.payload == "after reconnect"
        assert stream.reconnects == 1
        assert [json.loads(seen[0]) for seen in connections] == [{"action": "subscribe", "topic": "r/#"}] * 2


async def test_stream_without_reconnect_ends_with_an_error() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.close()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with StreamClient(f"ws://127.0.0.1:{port}", reconnect=False) as stream:
            with pytest.raises(HubConnectionError):
                async for _ in stream:
                    pass


def test_identity_endpoints_through_the_sync_client(shared_hub: ThreadedHub) -> None:
    org_id = shared_hub.admin.org_id
    with HubClient(shared_hub.http_url, token=shared_hub.admin.token) as hub:
        device = hub.create_device(org_id, "press-1", metadata={"line": 1})
        assert device.metadata == {"line": 1}
        assert device.id in [d.id for d in hub.list_devices(org_id).devices]
        assert hub.update_device(org_id, device.id, name="press-one").name == "press-one"
        assert hub.get_device(org_id, device.id).name == "press-one"
        issued = hub.create_device_token(org_id, device.id, name="primary")
        assert issued.token
        assert [t.id for t in hub.list_device_tokens(org_id, device.id).tokens] == [issued.id]
        assert hub.revoke_device_token(org_id, device.id, issued.id).revoked_at is not None

        app = hub.create_mqtt_token(org_id, "dashboard", subscribe=["device/+/telemetry/#"])
        assert app.permissions.publish == []
        assert hub.get_mqtt_token(org_id, app.token_id).status == "active"
        assert app.token_id in [t.token_id for t in hub.list_mqtt_tokens(org_id).tokens]
        with HubClient(shared_hub.http_url, api_key=app.token) as app_client, pytest.raises(PermissionDeniedError):
            app_client.publish("device/x/commands", "reboot")
        assert hub.revoke_mqtt_token(org_id, app.token_id).token_id == app.token_id

        member = hub.create_user(org_id, "member@sdk.example", "long enough password")
        assert member.role == "org_member"
        assert hub.update_user(org_id, member.id, is_active=False).is_active is False
        assert "member@sdk.example" in [u.email for u in hub.list_users(org_id).users]

        other = hub.create_organization("SDK Org")
        assert hub.rename_organization(other.id, "SDK Org 2").name == "SDK Org 2"
        hub.delete_organization(other.id)
        with pytest.raises(NotFoundError):
            hub.get_organization(other.id)

        certificate = hub.issue_device_certificate(org_id, device.id)
        assert certificate.data.clientId == device.id
        assert certificate.serial in [c.serial for c in hub.list_certificates(org_id).certificates]
        assert hub.revoke_certificate(org_id, certificate.serial).revoked_at is not None
        hub.delete_device(org_id, device.id)
        with pytest.raises(NotFoundError):
            hub.get_device(org_id, device.id)


async def test_identity_endpoints_through_the_async_client(shared_hub: ThreadedHub) -> None:
    org_id = shared_hub.admin.org_id
    async with AsyncHubClient(shared_hub.http_url) as hub:
        await hub.login(ADMIN_EMAIL, ADMIN_PASSWORD)
        device = await hub.create_device(org_id, "async-device")
        token = await hub.create_device_token(org_id, device.id)
        assert (await hub.list_device_tokens(org_id, device.id)).count == 1
        assert token.device_id == device.id
        app = await hub.create_mqtt_token(org_id, "async app", subscribe=["#"], publish=["#"])
        assert (await hub.get_mqtt_token(org_id, app.token_id)).permissions.publish == ["#"]
        await hub.delete_device(org_id, device.id)
        assert device.id not in [d.id for d in (await hub.list_devices(org_id)).devices]
