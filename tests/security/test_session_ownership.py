"""A session belongs to the identity that created it.

Three identities of one organization (a device with its token, an app with an MQTT API token, a user
with a client certificate) aim at one client id. Only the identity that created the session may resume
it or take its connection over; the others are refused with CONNACK 0x85 (3.1.1: return code 2) and
no subscription or queued message crosses. Revoking the app's token ends its session, persistent or not.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import update

from mqtthub.db.base import utcnow
from mqtthub.models import MqttApiToken
from mqtthub.mqtt.packets import (
    PROTOCOL_V5,
    PROTOCOL_V311,
    Connack,
    Disconnect,
    Properties,
    Puback,
    Publish,
    Suback,
    Subscribe,
    SubscriptionRequest,
)
from mqtthub.mqtt.reason_codes import ConnackReturnCode, ReasonCode
from tests.integration.broker.support import RawClient
from tests.support.served import LocalHub, hub_settings, serve_in_process
from tests.support.tls import certificate_tls, tls_overrides

CLIENT_ID = "contested-client"


@dataclass
class Identities:
    """Where to connect and with what, for each identity of the organization."""

    port: int
    tls_port: int
    device: tuple[str, str]
    app: tuple[str, str]
    app_token_id: str
    publisher: tuple[str, str]
    certificate: ssl.SSLContext
    org_id: str
    device_id: str
    member_id: str


async def _client(port: int, level: int, tls: ssl.SSLContext | None = None) -> RawClient:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=tls)
    return RawClient(reader, writer, level)


async def _connect(
    port: int,
    credentials: tuple[str, str] | None,
    *,
    level: int = PROTOCOL_V311,
    tls: ssl.SSLContext | None = None,
    client_id: str = CLIENT_ID,
) -> tuple[Connack, RawClient]:
    """CONNECT with a persistent session (clean_session=0; 5.0: a session expiry of one hour)."""
    client = await _client(port, level, tls)
    fields: dict[str, Any] = {"clean_start": False}
    if credentials is not None:
        fields |= {"username": credentials[0], "password": credentials[1].encode()}
    if level == PROTOCOL_V5:
        fields["properties"] = Properties(session_expiry_interval=3600)
    connack = await client.connect(client_id, **fields)
    if connack.reason_code != 0:
        await client.closed()
    return connack, client


async def _subscribe(client: RawClient, topic_filter: str) -> list[int]:
    client.send(Subscribe(1, [SubscriptionRequest(topic_filter, qos=1)]))
    suback = await client.receive()
    assert isinstance(suback, Suback)
    return suback.reason_codes


async def _publish(client: RawClient, topic: str, payload: bytes) -> None:
    client.send(Publish(topic, payload, qos=1, packet_id=7))
    assert isinstance(await client.receive(), Puback)


async def _next_payload(client: RawClient, timeout: float = 5) -> bytes:
    packet = await client.receive(timeout)
    assert isinstance(packet, Publish), packet
    if packet.qos and packet.packet_id is not None:
        client.send(Puback(packet.packet_id))
    return packet.payload


async def _nothing_arrives(client: RawClient, wait: float = 0.5) -> None:
    try:
        packet = await client.receive(wait)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected {packet}")


async def _leave(client: RawClient) -> None:
    client.send(Disconnect())
    await client.close()


async def _identities(running: LocalHub, tmp_path: Path) -> Identities:
    admin = running.client
    org_id = (await admin.get("/api/v1/organizations")).json()["organizations"][0]["id"]
    base = f"/api/v1/organizations/{org_id}"
    device = (await admin.post(f"{base}/devices", json={"name": "sensor"})).json()
    device_token = (await admin.post(f"{base}/devices/{device['id']}/tokens", json={})).json()["token"]
    rights = {"subscribe": ["private/#"], "publish": []}
    app = (await admin.post(f"{base}/mqtt-tokens", json={"name": "app", "permissions": rights})).json()
    writer_rights = {"subscribe": [], "publish": ["private/#"]}
    writer = (await admin.post(f"{base}/mqtt-tokens", json={"name": "writer", "permissions": writer_rights})).json()
    member = {"email": "member@example.com", "password": "long enough password", "role": "org_member"}
    created = await admin.post(f"{base}/users", json=member)
    assert created.status_code == 201
    async with await running.login(member["email"], member["password"]) as as_member:
        issued = (await as_member.post("/api/v1/auth/mqtt-certificate")).json()["data"]
        bundle = (await as_member.get(issued["p12Url"])).content
    tls = certificate_tls(bundle, issued["p12Password"], tmp_path, "user")
    urls = running.hub.mqtt_urls
    return Identities(
        port=int(urls["MQTT"].rsplit(":", 1)[1]),
        tls_port=int(urls["MQTT TLS"].rsplit(":", 1)[1]),
        device=(device["id"], device_token),
        app=(app["token"], app["token"]),
        app_token_id=app["token_id"],
        publisher=(writer["token"], writer["token"]),
        certificate=tls,
        org_id=org_id,
        device_id=device["id"],
        member_id=created.json()["id"],
    )


async def test_no_session_subscription_or_message_crosses_identities(tmp_path: Path) -> None:
    settings = hub_settings(tmp_path, **tls_overrides(tmp_path))
    async with serve_in_process(settings) as running:
        ids = await _identities(running, tmp_path)
        connack, app = await _connect(ids.port, ids.app)
        assert (connack.reason_code, connack.session_present) == (0, False)
        assert await _subscribe(app, "private/#") == [1]
        await _leave(app)
        _, writer = await _connect(ids.port, ids.publisher, client_id="writer")
        await _publish(writer, "private/secret", b"queued for the app")

        # The offline session of the app: neither the device nor the user's certificate may resume it.
        refused, _ = await _connect(ids.port, ids.device)
        assert refused.reason_code == ConnackReturnCode.IDENTIFIER_REJECTED
        refused, _ = await _connect(ids.port, ids.device, level=PROTOCOL_V5)
        assert refused.reason_code == ReasonCode.CLIENT_IDENTIFIER_NOT_VALID
        refused, _ = await _connect(ids.tls_port, None, tls=ids.certificate)
        assert refused.reason_code == ConnackReturnCode.IDENTIFIER_REJECTED

        # Its owner resumes it, with the subscription and the queued message.
        connack, app = await _connect(ids.port, ids.app)
        assert (connack.reason_code, connack.session_present) == (0, True)
        assert await _next_payload(app) == b"queued for the app"

        # Online: another identity cannot take the connection over (nor kick it by reusing the id).
        refused, _ = await _connect(ids.port, ids.device)
        assert refused.reason_code == ConnackReturnCode.IDENTIFIER_REJECTED
        await _publish(writer, "private/secret", b"still the app's")
        assert await _next_payload(app) == b"still the app's"

        # The same identity may take its own session over [MQTT-3.1.4-3].
        connack, again = await _connect(ids.port, ids.app)
        assert (connack.reason_code, connack.session_present) == (0, True)
        assert await app.closed() == []
        await _leave(again)

        # Revoking the token ends its persistent session: its messages stop being queued, and the
        # client id is free again for another identity, which finds nothing of the app's.
        discarded = running.hub.broker.stats().sessions_discarded
        revoked = await running.client.delete(f"/api/v1/organizations/{ids.org_id}/mqtt-tokens/{ids.app_token_id}")
        assert revoked.status_code == 200
        assert running.hub.broker.stats().sessions_discarded == discarded + 1
        await _publish(writer, "private/secret", b"after the revocation")
        connack, device = await _connect(ids.port, ids.device)
        assert (connack.reason_code, connack.session_present) == (0, False)
        await _nothing_arrives(device)
        await _leave(device)
        await _leave(writer)


async def test_revoking_a_token_ends_its_connected_session(tmp_path: Path) -> None:
    settings = hub_settings(tmp_path, **tls_overrides(tmp_path))
    async with serve_in_process(settings) as running:
        ids = await _identities(running, tmp_path)
        connack, app = await _connect(ids.port, ids.app, level=PROTOCOL_V5)
        assert connack.reason_code == 0
        assert await _subscribe(app, "private/#") == [1]
        sessions = running.hub.broker.stats().sessions
        revoked = await running.client.delete(f"/api/v1/organizations/{ids.org_id}/mqtt-tokens/{ids.app_token_id}")
        assert revoked.status_code == 200
        after = await app.closed()
        assert [packet.reason_code for packet in after if isinstance(packet, Disconnect)] == [ReasonCode.NOT_AUTHORIZED]
        assert running.hub.broker.stats().sessions == sessions - 1
        async with httpx.AsyncClient() as anonymous:
            assert (await anonymous.get(running.http_url + "/health")).status_code == 200


async def test_disabling_a_device_or_deactivating_a_user_ends_their_persistent_sessions(tmp_path: Path) -> None:
    settings = hub_settings(tmp_path, **tls_overrides(tmp_path))
    async with serve_in_process(settings) as running:
        ids = await _identities(running, tmp_path)
        broker = running.hub.broker
        _, device = await _connect(ids.port, ids.device, client_id="device-session")
        assert await _subscribe(device, f"devices/{ids.device_id}/commands") == [1]
        await _leave(device)
        _, user = await _connect(ids.tls_port, None, tls=ids.certificate, client_id="user-session")
        assert await _subscribe(user, "device/+/telemetry/#") == [1]
        await _leave(user)
        sessions, discarded = broker.stats().sessions, broker.stats().sessions_discarded

        base = f"/api/v1/organizations/{ids.org_id}"
        disabled = await running.client.patch(f"{base}/devices/{ids.device_id}", json={"enabled": False})
        assert disabled.status_code == 200
        deactivated = await running.client.patch(f"{base}/users/{ids.member_id}", json={"is_active": False})
        assert deactivated.status_code == 200
        assert broker.stats().sessions_discarded == discarded + 2
        assert broker.stats().sessions == sessions - 2

        # Enabled again, the device starts afresh: nothing of its old session is left.
        enabled = await running.client.patch(f"{base}/devices/{ids.device_id}", json={"enabled": True})
        assert enabled.status_code == 200
        connack, device = await _connect(ids.port, ids.device, client_id="device-session")
        assert (connack.reason_code, connack.session_present) == (0, False)
        await _leave(device)


async def test_a_credential_revoked_behind_the_api_ends_its_session_at_revalidation(tmp_path: Path) -> None:
    settings = hub_settings(
        tmp_path,
        mqtt_revalidate_interval=0.2,
        **tls_overrides(tmp_path),
    )
    async with serve_in_process(settings) as running:
        ids = await _identities(running, tmp_path)
        _, app = await _connect(ids.port, ids.app, level=PROTOCOL_V5)
        assert await _subscribe(app, "private/#") == [1]
        discarded = running.hub.broker.stats().sessions_discarded
        # As the CLI does it: in the database, without telling the running hub.
        async with running.hub.database.session() as session:
            await session.execute(
                update(MqttApiToken).where(MqttApiToken.id == ids.app_token_id).values(revoked_at=utcnow())
            )
        after = await app.closed()
        assert [packet.reason_code for packet in after if isinstance(packet, Disconnect)] == [ReasonCode.NOT_AUTHORIZED]
        assert running.hub.broker.stats().sessions_discarded == discarded + 1
