"""Two hub processes on one PostgreSQL database with a 2-node RabbitMQ cluster as their broker (``broker=rabbitmq``).

Device messages are put on ``amq.topic`` in the organization's vhost over AMQP, with the routing key and headers
RabbitMQ's MQTT plugin gives a device's PUBLISH, so ingestion is tested apart from the auth backend devices need.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import quote

import aio_pika
import asyncpg
import pytest

from tests.integration.auth.mqttclient import connect
from tests.integration.telemetry.hubflows import Admin, admin_client, hub_env, poll, short_id_of
from tests.support.hubproc import HubProcess, run_hub
from tests.support.rabbitmq import ADMIN_PASSWORD, ADMIN_USER, RabbitCluster, RabbitNode

# The first test of a session waits for the cluster to boot (15 s on a quiet machine, a minute under load).
pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(300)]


@dataclass
class Scaled:
    """The running system: cluster, database, two hubs (A on node 1, B on node 2) and the default organization."""

    rabbit: RabbitCluster
    dsn: str
    hubs: list[HubProcess]
    workdir: Path
    env: list[dict[str, str]]
    organization_id: str
    short_id: str


def _external_env(database_url: str, node: RabbitNode) -> dict[str, str]:
    return hub_env(database_url) | {
        "MQTTHUB_BROKER": "rabbitmq",
        "MQTTHUB_RABBITMQ_AMQP_URL": node.amqp_url,
        "MQTTHUB_RABBITMQ_MANAGEMENT_URL": node.management_url,
        "MQTTHUB_RABBITMQ_POLL_INTERVAL": "0.5",
        "MQTTHUB_RABBITMQ_PREFETCH": "50",
    }


@pytest.fixture(scope="module")
def database(postgres_base_url: str) -> Iterator[tuple[str, str]]:
    """A fresh database on the session's PostgreSQL server: (SQLAlchemy URL, asyncpg DSN)."""
    name = "scale_" + uuid.uuid4().hex[:10]
    dsn = postgres_base_url.replace("postgresql+asyncpg://", "postgresql://")

    async def run(statement: str) -> None:
        connection = await asyncpg.connect(dsn + "/postgres")
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    yield f"{postgres_base_url}/{name}", f"{dsn}/{name}"
    asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def scaled(
    rabbit: RabbitCluster, database: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scaled]:
    url, dsn = database
    workdir = tmp_path_factory.mktemp("scaled")
    env = [_external_env(url, node) for node in rabbit.nodes]
    (workdir / "a").mkdir()
    (workdir / "b").mkdir()
    # One after the other: the first creates the schema and the first-run account.
    with run_hub(workdir / "a", env=env[0]) as hub_a, run_hub(workdir / "b", env=env[1]) as hub_b:

        async def organization() -> tuple[str, str]:
            async with admin_client(hub_a) as admin:
                return admin.organization_id, await short_id_of(admin, admin.organization_id)

        organization_id, short_id = asyncio.run(organization())
        yield Scaled(rabbit, dsn, [hub_a, hub_b], workdir, env, organization_id, short_id)


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
