"""The integrations API on a real hub: document 002's shapes, isolation, live changes, /test, republish."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from mqtthub.auth.passwords import hash_password
from mqtthub.broker.hooks import BrokerMessage
from mqtthub.models import MqttConfig, Organization, User, UserRole
from tests.integration.integrations.conftest import publish, wait_until
from tests.integration.integrations.mosquitto import PASSWORD, USERNAME, Mosquitto
from tests.support.commits import commits_refused
from tests.support.served import LocalHub, hub_settings, serve_in_process

TOPIC = "/v3/applications/ABC123/business-events"


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[LocalHub]:
    settings = hub_settings(
        tmp_path,
        integration_reconnect_min=0.1,
        integration_reconnect_max=1.0,
        outbound_allow="127.0.0.1",
    )
    async with serve_in_process(settings) as hub:
        yield hub


@pytest.fixture
async def running_on_each_database(database_url: str, tmp_path: Path) -> AsyncIterator[LocalHub]:
    """A hub on SQLite and on PostgreSQL."""
    settings = hub_settings(
        tmp_path,
        database_url=database_url,
        integration_reconnect_min=0.1,
        integration_reconnect_max=1.0,
        outbound_allow="127.0.0.1",
    )
    async with serve_in_process(settings) as hub:
        yield hub


def config_body(broker: Mosquitto, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "broker": {
            "host": "127.0.0.1",
            "port": broker.tcp_port,
            "use_tls": False,
            "verify_cert": False,
            "username": USERNAME,
            "password": PASSWORD,
            "client_id": None,
            "keep_alive": 60,
            "clean_session": True,
        },
        "topics": {
            "prefix": "/v3/applications",
            "pattern": "{application_id}/business-events",
            "use_shared": True,
            "shared_group": "bre",
            "qos": 1,
        },
    }
    body["broker"].update(changes)
    return body


async def new_product(client: httpx.AsyncClient, name: str = "tyres") -> str:
    response = await client.post("/api/v1/products", json={"name": name, "description": "BRE tyres"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def user_client(running: LocalHub, role: UserRole, organization_id: str | None = None) -> httpx.AsyncClient:
    """A logged-in user of ``organization_id`` (a new organization when None)."""
    email = f"{role.value}-{organization_id or 'other'}@example.com"
    async with running.hub.database.session() as session:
        if organization_id is None:
            organization = Organization(name="other", short_id=f"oth{len(email) % 1000:03d}x")
            session.add(organization)
            await session.flush()
            organization_id = organization.id
        session.add(
            User(
                email=email,
                password_hash=hash_password("a long password"),
                role=role,
                organization_id=organization_id,
            )
        )
    return await running.login(email, "a long password")


async def status_of(client: httpx.AsyncClient, product_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/products/{product_id}/mqtt-config/status")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def wait_status(client: httpx.AsyncClient, product_id: str, check: Any, what: str) -> dict[str, Any]:
    for _ in range(600):
        status = await status_of(client, product_id)
        if check(status):
            return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}: {status}")


async def connected_product(client: httpx.AsyncClient, broker: Mosquitto) -> tuple[str, str, dict[str, Any]]:
    """A new product whose connector is connected to ``broker``: its id, its ``mqtt-config`` URL, its status."""
    product_id = await new_product(client)
    base = f"/api/v1/products/{product_id}/mqtt-config"
    await client.put(base, json=config_body(broker))
    return product_id, base, await wait_status(client, product_id, lambda s: s["connected"], "the connector")


async def test_products_are_owned_by_an_organization(running: LocalHub, mosquitto: Mosquitto) -> None:
    admin = running.client
    product_id = await new_product(admin)
    response = await admin.patch(f"/api/v1/products/{product_id}", json={"name": "tyres 2"})
    assert response.json()["name"] == "tyres 2"
    assert [item["id"] for item in (await admin.get("/api/v1/products")).json()["products"]] == [product_id]
    organization_id = (await admin.get(f"/api/v1/products/{product_id}")).json()["organization_id"]

    outsider = await user_client(running, UserRole.ORG_ADMIN)
    async with outsider:
        for path in ("", "/mqtt-config", "/mqtt-config/status", "/mqtt-config/subscriptions"):
            response = await outsider.get(f"/api/v1/products/{product_id}{path}")
            assert response.status_code == 404, path
            assert response.json()["detail"] == "Product not found"
        response = await outsider.put(f"/api/v1/products/{product_id}/mqtt-config", json=config_body(mosquitto))
        assert response.status_code == 404
        assert (await outsider.get("/api/v1/products")).json()["products"] == []

    member = await user_client(running, UserRole.ORG_MEMBER, organization_id)
    async with member:
        assert (await member.get(f"/api/v1/products/{product_id}/mqtt-config")).status_code == 200
        response = await member.put(f"/api/v1/products/{product_id}/mqtt-config", json=config_body(mosquitto))
        assert response.status_code == 403

    async with httpx.AsyncClient(base_url=running.http_url) as anonymous:
        assert (await anonymous.get(f"/api/v1/products/{product_id}/mqtt-config")).status_code == 401

    assert (await admin.delete(f"/api/v1/products/{product_id}")).status_code == 204
    assert (await admin.get(f"/api/v1/products/{product_id}")).status_code == 404


async def test_mqtt_config_as_documented_with_masked_secrets(
    running: LocalHub, mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    admin = running.client
    product_id = await new_product(admin)
    url = f"/api/v1/products/{product_id}/mqtt-config"
    assert (await admin.get(url)).json() == {
        "product_id": product_id,
        "mqtt_config": None,
        "subscriptions": None,
        "status": None,
        "message": "MQTT not configured for this product",
    }
    response = await admin.put(url, json=config_body(mosquitto))
    assert response.status_code == 200, response.text
    saved = response.json()
    assert saved["status"] == "success"
    assert saved["message"] == "MQTT configuration updated successfully"  # document 002, on the first PUT too
    assert saved["requires_restart"] is False
    assert saved["mqtt_config"]["broker"]["password"] == "***"
    assert saved["mqtt_config"]["broker"]["client_key"] is None
    assert saved["mqtt_config"]["topics"]["shared_group"] == "bre"

    async with running.hub.database.session() as session:
        stored = await session.scalar(select(MqttConfig).where(MqttConfig.product_id == product_id))
        assert stored is not None
        assert PASSWORD not in str(stored.broker)
        assert running.hub.secrets.decrypt(stored.broker["password"]) == PASSWORD

    status = await wait_status(admin, product_id, lambda s: s["connected"], "the connector to connect")
    assert status["broker_info"] == {"version": "3.1.1", "max_qos": None}
    assert status["client_id"].startswith("mqtthub-")
    assert set(status) >= {
        "product_id",
        "connected",
        "last_connected_at",
        "last_disconnected_at",
        "connection_error",
        "messages_received",
        "last_message_at",
        "subscribed_topics_count",
        "client_id",
        "broker_info",
        "updated_at",
    }

    # An empty password keeps the stored one: the connector still authenticates after the change.
    first_connect = status["last_connected_at"]
    response = await admin.put(url, json=config_body(mosquitto, password="", keep_alive=30))
    assert response.json()["mqtt_config"]["broker"]["password"] == "***"
    status = await wait_status(
        admin, product_id, lambda s: s["connected"] and s["last_connected_at"] != first_connect, "a reconnect"
    )
    assert status["connection_error"] is None
    document = (await admin.get(url)).json()
    assert document["mqtt_config"]["broker"]["keep_alive"] == 30
    assert document["status"]["connected"] is True
    assert document["subscriptions"] == []

    # null removes it; the broker then refuses the connection and the status says why.
    response = await admin.put(url, json=config_body(mosquitto, password=None))
    assert response.json()["mqtt_config"]["broker"]["password"] is None
    status = await wait_status(admin, product_id, lambda s: s["connection_error"], "a refused connection")
    assert status["connection_error"] == "Connection failed with code 5: Not authorized"
    assert status["connected"] is False
    assert "Not authorized" in caplog.text
    assert PASSWORD not in caplog.text


@pytest.mark.parametrize(
    ("change", "loc", "message"),
    [
        ({"port": 70000}, ["body", "broker", "port"], "less than or equal to 65535"),
        ({"host": None}, ["body", "broker", "host"], "valid string"),
        ({"protocol": "4.0"}, ["body", "broker", "protocol"], "3.1.1"),
    ],
)
async def test_invalid_config_is_422_in_fastapi_shape(
    running: LocalHub, mosquitto: Mosquitto, change: dict[str, Any], loc: list[str], message: str
) -> None:
    product_id = await new_product(running.client)
    body = config_body(mosquitto, **change)
    if change.get("host", "") is None:
        del body["broker"]["host"]
        message = "Field required"
    response = await running.client.put(f"/api/v1/products/{product_id}/mqtt-config", json=body)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == loc
    assert message in error["msg"]


async def _connack_server(return_code: int) -> asyncio.Server:
    """A TCP server that answers any CONNECT with a 3.1.1 CONNACK carrying ``return_code``."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        writer.write(bytes([0x20, 0x02, 0x00, return_code]))
        await writer.drain()
        writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", 0)


async def test_connection_test_reports_latency_and_documented_codes(running: LocalHub, mosquitto: Mosquitto) -> None:
    admin = running.client
    product_id = await new_product(admin)
    await admin.put(f"/api/v1/products/{product_id}/mqtt-config", json=config_body(mosquitto))
    before = await wait_status(admin, product_id, lambda s: s["connected"], "the connector")
    url = f"/api/v1/products/{product_id}/mqtt-config/test"
    plain = {"host": "127.0.0.1", "port": mosquitto.tcp_port, "use_tls": False, "username": USERNAME}

    success = (await admin.post(url, json={**plain, "password": PASSWORD})).json()
    assert success["status"] == "success"
    assert success["connected"] is True
    assert isinstance(success["latency_ms"], int)
    assert success["latency_ms"] >= 1
    assert success["details"] == "Connected successfully"
    assert success["error"] is None

    stored_password = (await admin.post(url, json={**plain, "password": ""})).json()
    assert stored_password["connected"] is True

    refused = (await admin.post(url, json={**plain, "password": "wrong"})).json()
    assert {key: refused[key] for key in ("status", "connected", "latency_ms", "error", "details")} == {
        "status": "error",
        "connected": False,
        "latency_ms": None,
        "error": "Connection failed with code 5",
        "details": "Not authorized",
    }

    refused_v5 = (await admin.post(url, json={**plain, "password": "wrong", "protocol": "5.0"})).json()
    assert (refused_v5["error"], refused_v5["details"]) == ("Connection failed with code 135", "Not authorized")

    server = await _connack_server(4)
    async with server:
        port = server.sockets[0].getsockname()[1]
        bad = (await admin.post(url, json={"host": "127.0.0.1", "port": port, "username": "u", "password": "p"})).json()
    assert (bad["error"], bad["details"], bad["code"]) == (
        "Connection failed with code 4",
        "Bad username or password",
        4,
    )

    for return_code, meaning in ((1, "Incorrect protocol version"), (2, "Invalid client identifier")):
        server = await _connack_server(return_code)
        async with server:
            port = server.sockets[0].getsockname()[1]
            answer = (
                await admin.post(url, json={"host": "127.0.0.1", "port": port, "username": "u", "password": "p"})
            ).json()
        assert (answer["error"], answer["details"], answer["code"]) == (
            f"Connection failed with code {return_code}",
            meaning,
            return_code,
        )

    closed = (await admin.post(url, json={"host": "127.0.0.1", "port": 1, "username": "u", "password": "p"})).json()
    assert closed["connected"] is False
    assert closed["details"] == "Broker unreachable"

    tls_on_plain = (await admin.post(url, json={**plain, "use_tls": True, "password": PASSWORD})).json()
    assert tls_on_plain["connected"] is False

    after = await status_of(admin, product_id)
    assert after["connected"] is True
    assert after["last_connected_at"] == before["last_connected_at"]


async def test_subscriptions_reconnect_failures_and_republish_to_the_embedded_broker(
    running_on_each_database: LocalHub, mosquitto: Mosquitto
) -> None:
    running = running_on_each_database
    admin = running.client
    product_id, base, _ = await connected_product(admin, mosquitto)

    bad = await admin.post(
        f"{base}/subscriptions",
        json={"name": "x", "actions": [{"type": "conditional_email", "condition": "a = 1", "template": "t"}]},
    )
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"][:3] == ["body", "actions", 0]
    unknown = await admin.post(f"{base}/subscriptions", json={"name": "x", "actions": [{"type": "activate_policy"}]})
    assert unknown.status_code == 422
    assert "DOMAIN_ACTIONS_URL" in unknown.json()["detail"]

    created = await admin.post(
        f"{base}/subscriptions",
        json={
            "name": "policy_created",
            "description": "Republishes created policies to the organization's devices",
            "variables": {"application_id": "ABC123"},
            "actions": [
                {
                    "type": "republish",
                    "topic": "policies/{{ event.policy_id }}",
                    "payload": {"id": "{{event.policy_id}}"},
                },
                {"type": "webhook", "url": "http://127.0.0.1:1/unreachable", "retries": 0, "timeout": 2},
            ],
        },
    )
    assert created.status_code == 201, created.text
    subscription = created.json()["subscription"]
    assert subscription["topic"] == TOPIC
    assert subscription["stats"] == {
        "messages_received": 0,
        "last_message_at": None,
        "actions_executed": 0,
        "actions_failed": 0,
    }
    await wait_status(admin, product_id, lambda s: s["subscribed_topics_count"] == 1, "the subscription")

    async with running.hub.database.session() as session:
        short_id = (await session.scalars(select(Organization.short_id))).first()
    arrived: list[BrokerMessage] = []
    local = running.hub.broker.subscribe(f"org/{short_id}/policies/#", arrived.append)
    try:
        await asyncio.to_thread(publish, mosquitto, TOPIC, [b'{"event": "policy_created", "policy_id": "P-42"}'])
        await wait_until(lambda: arrived, what="the republished message on the embedded broker")
    finally:
        running.hub.broker.unsubscribe(local)
    assert arrived[0].topic == f"org/{short_id}/policies/P-42"
    assert arrived[0].payload == b'{"id":"P-42"}'

    for _ in range(400):
        listed = (await admin.get(f"{base}/subscriptions")).json()["subscriptions"]
        if listed[0]["stats"]["actions_failed"] == 1:
            break
        await asyncio.sleep(0.05)
    assert listed[0]["stats"]["messages_received"] == 1
    assert listed[0]["stats"]["actions_executed"] == 1
    failures = (await admin.get(f"{base}/failures")).json()["failures"]
    assert failures[0]["action_type"] == "webhook"
    assert "127.0.0.1:1" in failures[0]["error"]

    sub_url = f"{base}/subscriptions/{subscription['id']}"
    updated = (await admin.put(sub_url, json={"enabled": False})).json()
    assert updated["status"] == "success"
    assert updated["subscription"]["enabled"] is False
    assert updated["subscription"]["description"].startswith("Republishes")
    await wait_status(admin, product_id, lambda s: s["subscribed_topics_count"] == 0, "the unsubscription")

    status = await status_of(admin, product_id)
    response = await admin.post(f"{base}/reconnect")
    assert response.json() == {"status": "success", "message": "Reconnection triggered. Check status in a few seconds."}
    await wait_status(
        admin,
        product_id,
        lambda s: s["connected"] and s["last_connected_at"] != status["last_connected_at"],
        "the forced reconnection",
    )

    assert (await admin.delete(sub_url)).json()["status"] == "success"
    missing = await admin.put(sub_url, json={"enabled": True})
    assert missing.status_code == 404
    assert missing.json()["detail"] == "Subscription not found"


async def test_email_templates_are_managed_through_the_api(running: LocalHub) -> None:
    admin = running.client
    product_id = await new_product(admin)
    url = f"/api/v1/products/{product_id}/email-templates/payment_pending"
    broken = await admin.put(url, json={"subject": "{{ payment.id", "body": "x"})
    assert broken.status_code == 422
    saved = await admin.put(
        url, json={"subject": "Payment {{ payment.id }}", "body": "Pending", "recipients": ["{{ event.email }}"]}
    )
    assert saved.status_code == 200, saved.text
    listed = (await admin.get(f"/api/v1/products/{product_id}/email-templates")).json()["templates"]
    assert [item["name"] for item in listed] == ["payment_pending"]
    assert (await admin.delete(url)).status_code == 200
    assert (await admin.delete(url)).status_code == 404


async def test_status_follows_a_broker_restart(running: LocalHub, mosquitto: Mosquitto) -> None:
    admin = running.client
    product_id = await new_product(admin)
    base = f"/api/v1/products/{product_id}/mqtt-config"
    await admin.put(base, json=config_body(mosquitto))
    await admin.post(
        f"{base}/subscriptions",
        json={"name": "tick", "variables": {"application_id": "ABC123"}, "actions": [{"type": "store"}]},
    )
    await wait_status(admin, product_id, lambda s: s["subscribed_topics_count"] == 1, "the subscription")
    await asyncio.to_thread(publish, mosquitto, TOPIC, [b'{"event": "tick"}'])
    await wait_status(admin, product_id, lambda s: s["messages_received"] == 1, "the first message")

    await asyncio.to_thread(mosquitto.stop)
    down = await wait_status(admin, product_id, lambda s: not s["connected"], "the disconnect")
    assert down["last_disconnected_at"] is not None
    assert down["broker_info"] is None
    assert down["connection_error"].startswith(("Connection lost", "Connection failed"))
    (lost,) = [event for event in down["recent_events"] if event["event"] == "disconnected"]
    assert lost["detail"].startswith("Connection lost")
    await wait_status(admin, product_id, lambda s: "Connection refused" in (s["connection_error"] or ""), "a retry")

    await asyncio.to_thread(mosquitto.start)
    up = await wait_status(
        admin, product_id, lambda s: s["connected"] and s["subscribed_topics_count"] == 1, "the reconnection"
    )
    assert up["connection_error"] is None
    assert [event["event"] for event in up["recent_events"]][:2] == ["connected", "disconnected"]
    await asyncio.to_thread(publish, mosquitto, TOPIC, [b'{"event": "tick"}'])
    await wait_status(admin, product_id, lambda s: s["messages_received"] == 2, "counting on after the restart")
    listed = (await admin.get(f"{base}/subscriptions")).json()["subscriptions"]
    for _ in range(200):
        if listed[0]["stats"]["messages_received"] == 2:
            break
        await asyncio.sleep(0.05)
        listed = (await admin.get(f"{base}/subscriptions")).json()["subscriptions"]
    assert listed[0]["stats"]["messages_received"] == 2
    assert listed[0]["stats"]["actions_executed"] == 2
    history = (await admin.get("/messages")).json()
    assert [(item["topic"], item["payload"], item["qos"]) for item in history["messages"]] == [
        (TOPIC, '{"event": "tick"}', 1),
        (TOPIC, '{"event": "tick"}', 1),
    ]


async def test_a_change_takes_effect_only_once_committed(
    running_on_each_database: LocalHub, mosquitto: Mosquitto
) -> None:
    """A change whose commit fails never reaches the connector; the same change committed does."""
    running = running_on_each_database
    admin = running.client
    product_id, base, before = await connected_product(admin, mosquitto)
    subscription = {"name": "tick", "variables": {"application_id": "ABC123"}, "actions": [{"type": "store"}]}

    async with commits_refused(running.hub.database, "mqtt_configs"):
        refused = await admin.put(base, json=config_body(mosquitto, keep_alive=30))
    assert refused.status_code >= 400
    async with commits_refused(running.hub.database, "event_subscriptions"):
        refused = await admin.post(f"{base}/subscriptions", json=subscription)
    assert refused.status_code >= 400
    assert (await admin.get(base)).json()["mqtt_config"]["broker"]["keep_alive"] == 60

    # Changes are applied in order: once a later, committed one is, the refused ones would have been too.
    assert (await admin.post(f"{base}/subscriptions", json=subscription | {"name": "tock"})).status_code == 201
    status = await wait_status(admin, product_id, lambda s: s["subscribed_topics_count"] == 1, "the subscription")
    assert status["connected"] is True
    assert status["last_connected_at"] == before["last_connected_at"]  # no reconnection with the refused options
    assert [item["name"] for item in (await admin.get(f"{base}/subscriptions")).json()["subscriptions"]] == ["tock"]

    committed = await admin.put(base, json=config_body(mosquitto, keep_alive=30))
    assert committed.status_code == 200, committed.text
    await wait_status(
        admin,
        product_id,
        lambda s: s["connected"] and s["last_connected_at"] != before["last_connected_at"],
        "the reconnection with the committed options",
    )

    assert (await admin.delete(base)).status_code == 200
    await wait_until(lambda: running.hub.integrations.status(product_id) is None, what="the connector to stop")


async def test_deleting_the_organization_stops_its_connectors(running: LocalHub, mosquitto: Mosquitto) -> None:
    async with running.hub.database.session() as session:
        organization = Organization(name="leaving", short_id="leave1")
        session.add(organization)
        await session.flush()
        organization_id = organization.id
    async with await user_client(running, UserRole.ORG_ADMIN, organization_id) as owner:
        product_id = await new_product(owner)
        await owner.put(f"/api/v1/products/{product_id}/mqtt-config", json=config_body(mosquitto))
        await wait_status(owner, product_id, lambda s: s["connected"], "the connector")
    assert (await running.client.delete(f"/api/v1/organizations/{organization_id}")).status_code == 204
    await wait_until(lambda: running.hub.integrations.status(product_id) is None, what="the connector to stop")
    assert running.hub.integrations.connector_states() == {"connected": 0, "disconnected": 0, "error": 0, "standby": 0}
