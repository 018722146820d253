"""Two hub processes on one PostgreSQL database with a 2-node RabbitMQ cluster as their broker (``broker=rabbitmq``).

Node 1 asks hub A's auth backend about its MQTT clients, node 2 asks hub B's. Some device messages are put on
``amq.topic`` over AMQP, with the routing key and headers RabbitMQ's MQTT plugin gives a device's PUBLISH, to test
ingestion apart from MQTT; the others come from real MQTT clients (paho, mosquitto_pub).
"""

from __future__ import annotations

import asyncio
import json
import queue
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any
from urllib.error import HTTPError
from urllib.parse import quote

import aio_pika
import asyncpg
import pytest
import websockets

from tests.conftest import require
from tests.integration.auth.mqttclient import PahoClient, connect
from tests.integration.observability.scrape import scrape
from tests.integration.observability.scrape import value as sample
from tests.integration.scaleout.conftest import Scaled
from tests.integration.telemetry.hubflows import Admin, admin_client, poll, socketio_client, stream_client
from tests.support.rabbitmq import ADMIN_PASSWORD, ADMIN_USER, RabbitCluster, RabbitNode

# The first test of a session waits for the cluster to boot (15 s on a quiet machine, a minute under load).
pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(300)]


async def _datastream_devices(admin: Admin, organization_id: str, count: int) -> list[tuple[str, int]]:
    devices = []
    for _ in range(count):
        device = await admin.call(
            "POST", f"/api/v1/organizations/{organization_id}/devices", json={"name": "s"}, expect=201
        )
        definition = await admin.call(
            "POST", f"/api/v1/devices/{device['id']}/telemetry-definitions", json={"key": "t", "unit": "C"}, expect=201
        )
        devices.append((device["id"], int(definition["data"]["id"])))
    return devices


async def _publish_readings(node: RabbitNode, vhost: str, readings: list[tuple[str, int, int]]) -> None:
    """Publish ``(device, definition, value)`` readings as devices do through the MQTT plugin, confirmed."""
    url = f"amqp://{ADMIN_USER}:{ADMIN_PASSWORD}@127.0.0.1:{node.amqp_port}/{vhost}"
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange("amq.topic")
        for device_id, definition_id, value in readings:
            body = f'{{"value": {value}, "telemetryDataId": {definition_id}}}'.encode()
            message = aio_pika.Message(body, headers={"x-mqtt-publish-qos": 1, "x-mqtt-dup": False}, delivery_mode=2)
            await exchange.publish(message, routing_key=f"devices.{device_id}.datastream")


async def _stored(dsn: str, device_ids: list[str]) -> list[tuple[str, float]]:
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT device_id, value FROM telemetry_values WHERE device_id = ANY($1::text[])", device_ids
        )
    finally:
        await connection.close()
    return [(str(row["device_id"]), float(row["value"])) for row in rows]


async def test_each_organization_has_a_vhost_with_a_mirrored_ingest_queue_consumed_by_both_hubs(scaled: Scaled) -> None:
    assert await poll(lambda: _ingest_consumers(scaled.rabbit, scaled.short_id, 2))
    queue = scaled.rabbit.api("GET", f"/queues/{scaled.short_id}/mqtthub.ingest")
    assert queue["effective_policy_definition"]["ha-mode"] == "all"
    async with admin_client(scaled.hubs[1]) as admin:
        created = await admin.call("POST", "/api/v1/organizations", json={"name": "second"}, expect=201)
    # Hub B makes the vhost once the organization is committed; hub A joins it on its next poll.
    assert await poll(lambda: _ingest_consumers(scaled.rabbit, created["short_id"], 2))


async def _ingest_consumers(rabbit: RabbitCluster, vhost: str, count: int) -> bool:
    try:
        queues = await asyncio.to_thread(rabbit.api, "GET", f"/queues/{quote(vhost, safe='')}")
    except HTTPError:  # the vhost is not there yet
        return False
    return any(queue["name"] == "mqtthub.ingest" and queue.get("consumers") == count for queue in queues)


async def test_readings_published_on_both_nodes_are_stored_exactly_once(scaled: Scaled) -> None:
    async with admin_client(scaled.hubs[0]) as admin:
        devices = await _datastream_devices(admin, scaled.organization_id, 20)
    readings = [(device, definition, value) for value in range(10) for device, definition in devices]
    first, second = scaled.rabbit.nodes
    await asyncio.gather(
        _publish_readings(first, scaled.short_id, readings[::2]),
        _publish_readings(second, scaled.short_id, readings[1::2]),
    )
    device_ids = [device for device, _ in devices]

    async def all_stored() -> list[tuple[str, float]]:
        rows = await _stored(scaled.dsn, device_ids)
        return rows if len(rows) >= len(readings) else []

    rows = await poll(all_stored)
    await asyncio.sleep(1)  # anything stored twice would show up now
    rows = await _stored(scaled.dsn, device_ids)
    assert sorted(rows) == sorted((device, float(value)) for device, _, value in readings)


async def test_a_rest_publish_through_hub_a_reaches_an_mqtt_subscriber_on_node_2(scaled: Scaled) -> None:
    second = scaled.rabbit.nodes[1]
    code, subscriber = await connect(
        second.mqtt_port, f"{scaled.short_id}:{ADMIN_USER}", ADMIN_PASSWORD, client_id="watcher"
    )
    assert code == 0
    try:
        assert await subscriber.subscribe("alerts/#", qos=1) == [1]
        async with admin_client(scaled.hubs[0]) as admin:
            await admin.call("POST", "/publish", json={"topic": "alerts/fire", "payload": "hot", "qos": 1})
        received = await subscriber.next_message()
        assert (received.topic, received.payload) == ("alerts/fire", b"hot")
    finally:
        subscriber.close()


async def _live_bindings(rabbit: RabbitCluster, organization_id: str) -> int:
    """How many hubs follow the organization's live events (their queues bound to ``mqtthub.live``)."""
    bindings = await asyncio.to_thread(rabbit.api, "GET", "/exchanges/%2F/mqtthub.live/bindings/source")
    return sum(1 for binding in bindings if binding["routing_key"] == organization_id)


def _readings(events: list[dict[str, Any]]) -> list[tuple[str, float]]:
    """The ``(device, value)`` of each datastream event (as ``/api/v1/stream`` and Socket.IO send them)."""
    return [(event["data"]["deviceId"], event["data"]["value"]) for event in events if event["event"] == "datastream"]


async def test_readings_published_through_hub_a_reach_the_live_clients_of_both_hubs_once(scaled: Scaled) -> None:
    hub_a, hub_b = scaled.hubs
    async with admin_client(hub_a) as admin_a, admin_client(hub_b) as admin_b:
        devices = await _datastream_devices(admin_a, scaled.organization_id, 4)
        streams = [await stream_client(hub_a.http_url, admin_a), await stream_client(hub_b.http_url, admin_b)]
        sio, sio_events = await socketio_client(hub_b.http_url, admin_b.token)
        ws = await websockets.connect(hub_b.http_url.replace("http://", "ws://") + f"/ws?token={admin_b.token}")
        try:
            assert json.loads(await asyncio.wait_for(ws.recv(), 30))["type"] == "connected"
            await ws.send(json.dumps({"action": "subscribe", "topic": "devices/+/datastream"}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 30))["type"] == "subscribed"
            # Each hub follows the organization's events from the other once its first live client came.
            assert await poll(lambda: _bound_by(scaled, 2))
            expected = []
            for value in range(10):
                for device_id, definition_id in devices:
                    payload = json.dumps({"value": value, "telemetryDataId": definition_id})
                    topic = f"devices/{device_id}/datastream"
                    await admin_a.call("POST", "/publish", json={"topic": topic, "payload": payload, "qos": 1})
                    expected.append((device_id, float(value)))

            def live() -> list[list[tuple[str, float]]]:
                return [*(_readings(stream.events) for stream in streams), _readings([d for _, d in sio_events])]

            async def everywhere() -> bool:
                return all(len(readings) >= len(expected) for readings in live())

            # Each reading is stored by one hub (competing consumers); the clients of both get it, once.
            assert await poll(everywhere)
            frames = [json.loads(await asyncio.wait_for(ws.recv(), 30)) for _ in expected]
            await asyncio.sleep(1)  # an event delivered twice would show up now
            for readings in live():
                assert sorted(readings) == sorted(expected)
            # Every reading was stored by one hub and relayed to the other, which follows the organization too.
            relayed = [await asyncio.to_thread(scrape, hub.http_url + "/metrics") for hub in scaled.hubs]
            received = sum(
                sample(samples, "mqtthub_live_relayed_events_total", direction="received") for samples in relayed
            )
            assert received >= len(expected)
            assert sorted(frame["topic"] for frame in frames) == sorted(f"devices/{d}/datastream" for d, _ in expected)
        finally:
            await ws.close()
            await sio.disconnect()
            for stream in streams:
                await stream.close()
    # With their last live client gone, the hubs stop following the organization.
    assert await poll(lambda: _bound_by(scaled, 0))


async def _bound_by(scaled: Scaled, hubs: int) -> bool:
    return await _live_bindings(scaled.rabbit, scaled.organization_id) == hubs


@dataclass
class Device:
    id: str
    token_id: str
    token: str
    definition_id: int


async def _device(admin: Admin, organization_id: str) -> Device:
    base = f"/api/v1/organizations/{organization_id}/devices"
    device = await admin.call("POST", base, json={"name": "mqtt"}, expect=201)
    token = await admin.call("POST", f"{base}/{device['id']}/tokens", json={"name": "t"}, expect=201)
    definition = await admin.call(
        "POST", f"/api/v1/devices/{device['id']}/telemetry-definitions", json={"key": "t", "unit": "C"}, expect=201
    )
    return Device(device["id"], token["id"], token["token"], int(definition["data"]["id"]))


async def test_devices_log_in_on_either_node_with_their_tokens_and_are_refused_with_bad_ones(scaled: Scaled) -> None:
    require(shutil.which("mosquitto_pub") is not None, "mosquitto_pub (apt-get install mosquitto-clients)")
    async with admin_client(scaled.hubs[0]) as admin:
        device = await _device(admin, scaled.organization_id)
        other = await admin.call("POST", "/api/v1/organizations", json={"name": "elsewhere"}, expect=201)
    # RabbitMQ closes the connection of a client of a vhost not made yet (see the wildcard test below).
    assert await poll(lambda: _ingest_consumers(scaled.rabbit, other["short_id"], 2))
    username = f"{scaled.short_id}:{device.id}"
    for node in scaled.rabbit.nodes:
        code, client = await connect(node.mqtt_port, username, device.token, client_id=f"ok-{node.mqtt_port}")
        assert code == 0
        client.close()
        # A wrong token, and the right token in another organization's vhost: CONNACK 4 from the /user answer.
        assert (await connect(node.mqtt_port, username, "mqh_dev_wrong", client_id="bad"))[0] == 4
        assert (await connect(node.mqtt_port, f"{other['short_id']}:{device.id}", device.token, client_id="x"))[0] == 4
        command = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(node.mqtt_port), "-q", "1", "-u", username]
        topic = ["-t", f"devices/{device.id}/status", "-m", '{"status": "online"}']
        good = await asyncio.to_thread(
            subprocess.run, [*command, "-P", device.token, *topic], capture_output=True, text=True, timeout=30
        )
        assert good.returncode == 0, good.stderr
        bad = await asyncio.to_thread(
            subprocess.run, [*command, "-P", "mqh_dev_wrong", *topic], capture_output=True, text=True, timeout=30
        )
        assert bad.returncode != 0


async def test_an_organization_s_wildcard_subscriber_sees_nothing_of_another_organization(scaled: Scaled) -> None:
    first, second = scaled.rabbit.nodes
    async with admin_client(scaled.hubs[0]) as admin:
        device = await _device(admin, scaled.organization_id)
        other = await admin.call("POST", "/api/v1/organizations", json={"name": "neighbour"}, expect=201)
        app = await admin.call(
            "POST",
            f"/api/v1/organizations/{other['id']}/mqtt-tokens",
            json={"name": "spy", "permissions": {"subscribe": ["#"], "publish": []}},
            expect=201,
        )
        own_app = await admin.call(
            "POST",
            f"/api/v1/organizations/{scaled.organization_id}/mqtt-tokens",
            json={"name": "watch", "permissions": {"subscribe": ["#"], "publish": []}},
            expect=201,
        )
    # The new organization's vhost is made right after its commit, in the background: RabbitMQ answers a client
    # of a vhost that does not exist yet by closing its connection.
    assert await poll(lambda: _ingest_consumers(scaled.rabbit, other["short_id"], 2))
    code, spy = await connect(second.mqtt_port, f"{other['short_id']}:{app['token']}", app["token"], client_id="spy")
    assert code == 0
    code, own = await connect(
        second.mqtt_port, f"{scaled.short_id}:{own_app['token']}", own_app["token"], client_id="own"
    )
    assert code == 0
    code, publisher = await connect(first.mqtt_port, f"{scaled.short_id}:{device.id}", device.token, client_id="pub")
    assert code == 0
    try:
        assert await spy.subscribe("#", qos=1) == [1]
        assert await own.subscribe("#", qos=1) == [1]
        await publisher.publish(f"devices/{device.id}/status", b'{"status": "online"}')
        assert (await own.next_message()).topic == f"devices/{device.id}/status"
        with pytest.raises(queue.Empty):
            await spy.next_message(timeout=1.0)
    finally:
        for client in (spy, own, publisher):
            client.close()


FLEET = 100
"""Devices of the fleet test, half on each node."""
FLEET_READINGS = 3
"""Readings each of them publishes."""
BATCH = 10
"""Devices made, or connected, at a time."""


async def test_telemetry_from_100_mqtt_devices_on_both_nodes_is_stored_exactly_once(scaled: Scaled) -> None:
    async with admin_client(scaled.hubs[1]) as admin:
        devices = []
        for _ in range(0, FLEET, BATCH):
            devices += await asyncio.gather(*(_device(admin, scaled.organization_id) for _ in range(BATCH)))
    clients: list[PahoClient] = []
    try:
        for start in range(0, FLEET, BATCH):
            connected = await asyncio.gather(
                *(
                    connect(
                        scaled.rabbit.nodes[index % 2].mqtt_port,
                        f"{scaled.short_id}:{devices[index].id}",
                        devices[index].token,
                        client_id=f"d{index}",
                    )
                    for index in range(start, start + BATCH)
                )
            )
            assert [code for code, _ in connected] == [0] * BATCH
            clients += [client for _, client in connected]
        for value in range(FLEET_READINGS):
            await asyncio.gather(
                *(
                    client.publish(
                        f"devices/{device.id}/datastream",
                        f'{{"value": {value}, "telemetryDataId": {device.definition_id}}}'.encode(),
                    )
                    for client, device in zip(clients, devices, strict=True)
                )
            )
    finally:
        for client in clients:
            client.close()
    device_ids = [device.id for device in devices]
    expected = sorted((device.id, float(value)) for device in devices for value in range(FLEET_READINGS))

    async def all_stored() -> bool:
        return len(await _stored(scaled.dsn, device_ids)) >= len(expected)

    assert await poll(all_stored, timeout=60)
    await asyncio.sleep(1)
    assert sorted(await _stored(scaled.dsn, device_ids)) == expected


async def test_a_token_revoked_through_hub_b_disconnects_its_client_from_node_1_and_keeps_it_out(
    scaled: Scaled,
) -> None:
    first = scaled.rabbit.nodes[0]
    async with admin_client(scaled.hubs[0]) as admin:
        device = await _device(admin, scaled.organization_id)
    username = f"{scaled.short_id}:{device.id}"
    code, client = await connect(first.mqtt_port, username, device.token, client_id="revoked")
    assert code == 0
    try:
        # Hub B knows the connection from its next listing (every 0.5 s) once RabbitMQ lists it.
        async def listed() -> bool:
            connections = await asyncio.to_thread(scaled.rabbit.api, "GET", "/connections?columns=user")
            return any(connection.get("user") in (username, device.id) for connection in connections)

        assert await poll(listed)
        await asyncio.sleep(1.0)
        async with admin_client(scaled.hubs[1]) as admin:
            base = f"/api/v1/organizations/{scaled.organization_id}/devices/{device.id}/tokens"
            await admin.call("DELETE", f"{base}/{device.token_id}")
        assert await client.wait_disconnected(timeout=5)
    finally:
        client.close()

    # Node 1 asks hub A, which learns of the revocation from the database on its next revalidation round (every
    # second): until then it may still trust what it remembers of the token. From then on it refuses it.
    async def refused() -> bool:
        code, again = await connect(first.mqtt_port, username, device.token, client_id="revoked")
        if code == 0:
            again.close()
        return code == 4

    assert await poll(refused, timeout=10)
    assert (await connect(first.mqtt_port, username, device.token, client_id="revoked"))[0] == 4


async def test_the_cluster_s_clients_are_listed_and_kicked_through_a_hub_and_retained_messages_are_not_listed(
    scaled: Scaled,
) -> None:
    second = scaled.rabbit.nodes[1]
    async with admin_client(scaled.hubs[0]) as admin:
        device = await _device(admin, scaled.organization_id)
    code, client = await connect(second.mqtt_port, f"{scaled.short_id}:{device.id}", device.token, client_id="listed")
    assert code == 0
    try:
        async with admin_client(scaled.hubs[0]) as admin:
            clients = f"/api/v1/organizations/{scaled.organization_id}/clients"

            async def listed() -> bool:
                page = await admin.call("GET", clients)
                return any(each["client_id"] == "listed" for each in page["clients"])

            assert await poll(listed)
            entry = next(
                each for each in (await admin.call("GET", clients))["clients"] if each["client_id"] == "listed"
            )
            assert entry["principal_id"] == f"device:{device.id}"
            assert entry["subscriptions"] == []  # the management API does not list them
            await admin.call("DELETE", f"{clients}/listed", expect=204)
            assert await client.wait_disconnected(timeout=10)
            retained = f"/api/v1/organizations/{scaled.organization_id}/retained"
            await admin.call("GET", retained, expect=503)
    finally:
        client.close()
