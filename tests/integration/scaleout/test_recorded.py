"""Recorded filters with two hubs in front of the RabbitMQ cluster: each message is in the history once.

A filter recorded through one hub is a binding of the organization's mirrored ``mqtthub.recorded`` queue, which both
hubs consume as competing consumers (docs/scale-out.md); the other hub follows the filter from the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.integration.auth.mqttclient import connect
from tests.integration.scaleout.conftest import Scaled
from tests.integration.scaleout.recorded import binding_keys, consumed_by_both_hubs, history, recorded_system
from tests.integration.telemetry.hubflows import Admin, admin_client, poll
from tests.support.rabbitmq import RabbitCluster

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(300)]

MESSAGES = 50
"""Messages the devices publish in all, half on each node."""


@pytest.fixture(scope="module")
def scaled(
    rabbit: RabbitCluster, database: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scaled]:
    yield from recorded_system(rabbit, database, tmp_path_factory.mktemp("recorded"))


async def _device(admin: Admin, scaled: Scaled) -> tuple[str, str]:
    base = f"/api/v1/organizations/{scaled.organization_id}/devices"
    device = await admin.call("POST", base, json={"name": "recorded"}, expect=201)
    token = await admin.call("POST", f"{base}/{device['id']}/tokens", json={"name": "t"}, expect=201)
    return device["id"], token["token"]


async def _recorded_filters(admin: Admin) -> list[str]:
    topics = await admin.call("GET", "/topics")
    return sorted(topics["subscriptions"])


async def test_a_filter_recorded_through_hub_a_stores_each_message_of_both_nodes_once(scaled: Scaled) -> None:
    topic_filter = "device/+/telemetry/#"
    async with admin_client(scaled.hubs[0]) as admin_a, admin_client(scaled.hubs[1]) as admin_b:
        await admin_a.call("POST", "/subscribe", json={"topic": topic_filter, "qos": 1})
        devices = [await _device(admin_a, scaled) for _ in scaled.rabbit.nodes]
        # Hub A binds the filter right after its commit; hub B follows it from the database.
        assert await poll(lambda: consumed_by_both_hubs(scaled))
        assert await poll(lambda: _bound(scaled, ["device.*.telemetry.#"]))
        assert await poll(lambda: _filters_are(admin_b, [topic_filter]))
        clients = []
        try:
            for (device_id, token), node in zip(devices, scaled.rabbit.nodes, strict=True):
                username = f"{scaled.short_id}:{device_id}"
                code, client = await connect(node.mqtt_port, username, token, client_id=device_id)
                assert code == 0
                clients.append((device_id, client))
            for number in range(MESSAGES):
                device_id, client = clients[number % 2]
                await client.publish(f"device/{device_id}/telemetry/count", str(number).encode(), qos=1)
        finally:
            for _, client in clients:
                client.close()
        expected = sorted(
            (f"device/{clients[number % 2][0]}/telemetry/count", str(number)) for number in range(MESSAGES)
        )

        async def all_recorded() -> bool:
            return len(await history(scaled, "device/%")) >= MESSAGES

        assert await poll(all_recorded)
        await asyncio.sleep(1)  # anything recorded twice would show up now
        assert sorted(await history(scaled, "device/%")) == expected
        # Both hubs serve the same history.
        for admin in (admin_a, admin_b):
            page = await admin.call("GET", "/messages", params={"topic": topic_filter, "limit": 1000})
            assert page["total"] == MESSAGES
            assert sorted(message["payload"] for message in page["messages"]) == sorted(
                str(number) for number in range(MESSAGES)
            )


async def test_a_filter_dropped_through_hub_b_is_unbound_and_no_longer_recorded(scaled: Scaled) -> None:
    async with admin_client(scaled.hubs[0]) as admin_a, admin_client(scaled.hubs[1]) as admin_b:
        await admin_a.call("POST", "/subscribe", json={"topic": "alerts/#", "qos": 0})
        await admin_a.call("POST", "/subscribe", json={"topic": "alerts/+/fire", "qos": 0})
        assert await poll(lambda: _filters_are(admin_b, ["alerts/#", "alerts/+/fire"], among="alerts/"))
        assert await poll(lambda: _bound(scaled, ["alerts.#", "alerts.*.fire"], among="alerts."))
        # A message matching both recorded filters is in the queue once, so it is recorded once.
        await admin_b.call("POST", "/publish", json={"topic": "alerts/hall/fire", "payload": "first", "qos": 1})
        assert await poll(lambda: _history_is(scaled, [("alerts/hall/fire", "first")]))
        await admin_b.call("DELETE", "/subscribe/alerts%2F%23")
        await admin_b.call("DELETE", "/subscribe/alerts%2F%2B%2Ffire")
        assert await poll(lambda: _bound(scaled, [], among="alerts."))
        assert await poll(lambda: _filters_are(admin_a, [], among="alerts/"))
        await admin_a.call("POST", "/publish", json={"topic": "alerts/hall/fire", "payload": "second", "qos": 1})
        await asyncio.sleep(1)
        assert await history(scaled, "alerts/%") == [("alerts/hall/fire", "first")]


async def _bound(scaled: Scaled, keys: list[str], among: str = "") -> bool:
    return [key for key in await binding_keys(scaled) if key.startswith(among)] == keys


async def _filters_are(admin: Admin, filters: list[str], among: str = "") -> bool:
    return [each for each in await _recorded_filters(admin) if each.startswith(among)] == filters


async def _history_is(scaled: Scaled, rows: list[tuple[str, str]]) -> bool:
    return sorted(await history(scaled, "alerts/%")) == rows
