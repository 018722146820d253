"""RabbitMQ's ``rabbitmq_auth_backend_http`` contract as RabbitMQ 3.10's MQTT plugin uses it, against a real hub:
form-encoded POSTs and GETs on /user, /vhost, /resource and /topic, plain ``allow``/``deny`` answers, a vhost per
organization, routing keys for topics, and the identity matrix."""

from __future__ import annotations

import httpx

from mqtthub.rabbitmq.topics import topic_of
from tests.integration.authbackend.world import LOGINS, SECRET, TOPICS, World

BASE = "/auth-backend/rabbitmq"


def broker(world: World) -> httpx.AsyncClient:
    """A client as RabbitMQ is configured: the secret as the password of the URL's user part."""
    return httpx.AsyncClient(base_url=world.backend_url, auth=("rabbitmq", SECRET), timeout=30)


def routing_key(topic: str) -> str:
    return topic.translate(str.maketrans("/.+", "./*"))


def test_routing_keys_map_back_to_topics() -> None:
    assert topic_of("devices.abc.datastream") == "devices/abc/datastream"
    assert topic_of("device.*.telemetry.#") == "device/+/telemetry/#"
    assert topic_of("a/b.c") == "a.b/c"


async def test_logins_answer_as_the_embedded_broker_in_their_vhost(world: World) -> None:
    async with broker(world) as client:
        for name, expected in LOGINS.items():
            identity = world.identity(name)
            vhost = identity.vhost or world.short_id
            body = {"username": identity.username, "password": identity.password, "vhost": vhost, "client_id": name}
            for response in (
                await client.post(f"{BASE}/user", data=body),
                await client.get(f"{BASE}/user", params=body),
            ):
                assert response.status_code == 200
                assert response.text == ("allow" if expected else "deny"), name


async def test_a_client_may_use_only_its_organizations_vhost(world: World) -> None:
    device, foreign, admin = world.identity("device"), world.identity("foreign_device"), world.identity("admin")
    async with broker(world) as client:
        for identity, vhost, allowed in (
            (device, world.short_id, True),
            (device, world.other_short_id, False),
            (foreign, world.other_short_id, True),
            (foreign, world.short_id, False),
            (admin, world.other_short_id, True),
        ):
            login = {"username": identity.username, "password": identity.password, "vhost": vhost}
            assert (await client.post(f"{BASE}/user", data=login)).text == ("allow" if allowed else "deny")
            check = {"username": identity.username, "vhost": vhost, "ip": "192.0.2.7"}
            assert (await client.post(f"{BASE}/vhost", data=check)).text == ("allow" if allowed else "deny")


async def test_resources_are_the_mqtt_plugins_own(world: World) -> None:
    device = world.identity("device")
    async with broker(world) as client:
        for resource, name, permission, allowed in (
            ("queue", "mqtt-subscription-sensor-1qos1", "configure", True),
            ("queue", "mqtt-subscription-sensor-1qos0", "read", True),
            ("exchange", "amq.topic", "write", True),
            ("exchange", "amq.topic", "read", True),
            ("exchange", "amq.topic", "configure", False),
            ("queue", "mqtthub-ingest", "read", False),
            ("exchange", "amq.direct", "write", False),
        ):
            body = {
                "username": device.username,
                "vhost": world.short_id,
                "resource": resource,
                "name": name,
                "permission": permission,
            }
            assert (await client.post(f"{BASE}/resource", data=body)).text == ("allow" if allowed else "deny"), body
        body["vhost"] = world.other_short_id
        body.update(resource="exchange", name="amq.topic", permission="write")
        assert (await client.post(f"{BASE}/resource", data=body)).text == "deny"


async def test_topic_matrix_through_routing_keys(world: World) -> None:
    async with broker(world) as client:
        for case in TOPICS:
            topic = case.written(world)
            if topic.startswith("$"):
                continue  # RabbitMQ 3.10 has neither $SYS nor shared subscriptions
            identity = world.identity(case.identity)
            vhost = identity.vhost or world.other_short_id
            if case.identity == "admin":
                prefix = f"org/{world.other_short_id}/"
                if not topic.startswith(prefix):
                    continue  # inside a vhost an administrator names that organization's topics only
                topic = topic[len(prefix) :]
            body = {
                "username": identity.username,
                "vhost": vhost,
                "resource": "topic",
                "name": "amq.topic",
                "permission": "write" if case.action == "publish" else "read",
                "routing_key": routing_key(topic),
                "variable_map.client_id": "c1",
                "variable_map.username": identity.username,
                "variable_map.vhost": vhost,
            }
            response = await client.post(f"{BASE}/topic", data=body)
            assert response.text == ("allow" if case.allowed else "deny"), case


async def test_another_organizations_vhost_gets_no_topics(world: World) -> None:
    device = world.identity("device")
    body = {
        "username": device.username,
        "vhost": world.other_short_id,
        "resource": "topic",
        "name": "amq.topic",
        "permission": "write",
        "routing_key": f"devices.{world.device_id}.datastream",
    }
    async with broker(world) as client:
        assert (await client.post(f"{BASE}/topic", data=body)).text == "deny"
        body["vhost"] = world.short_id
        assert (await client.post(f"{BASE}/topic", data=body)).text == "allow"
