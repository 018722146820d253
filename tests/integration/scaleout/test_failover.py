"""Losing a hub, or a broker node, while devices publish: nothing RabbitMQ acknowledged to a device is lost.

A device's QoS 1 PUBACK comes from RabbitMQ once its message is in the mirrored ingest queue; the hubs take it from
there and acknowledge it to RabbitMQ only after their commit. So the acknowledged readings of every device must all
end up stored, whatever dies. A reading may be stored twice when a hub dies between its commit and its
acknowledgement (docs/scale-out.md): the tests check that nothing is missing, and that duplicates stay that rare.
"""

from __future__ import annotations

import signal
import threading

import asyncpg
import pytest

from tests.integration.scaleout.conftest import Scaled
from tests.integration.telemetry.hubflows import Admin, admin_client, poll
from tests.integration.telemetry.publisher import Publisher
from tests.integration.telemetry.support import SeededDevice
from tests.support.rabbitmq import RabbitNode

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(300)]

READINGS = 500
"""Readings each device publishes: bounded, so the backlog a loaded machine builds up is drained in time."""
PREFETCH = 50
"""``MQTTHUB_RABBITMQ_PREFETCH`` of the test hubs: what a hub killed after its commit may leave to be stored again."""


async def _seeded(admin: Admin, scaled: Scaled) -> SeededDevice:
    base = f"/api/v1/organizations/{scaled.organization_id}/devices"
    device = await admin.call("POST", base, json={"name": "flat-out"}, expect=201)
    token = await admin.call("POST", f"{base}/{device['id']}/tokens", json={"name": "t"}, expect=201)
    definition = await admin.call(
        "POST", f"/api/v1/devices/{device['id']}/telemetry-definitions", json={"key": "t", "unit": "C"}, expect=201
    )
    return SeededDevice(
        scaled.organization_id, scaled.short_id, device["id"], token["token"], int(definition["data"]["id"])
    )


class Fleet:
    """Paho devices publishing numbered QoS 1 readings flat out, spread over the given nodes."""

    def __init__(self, scaled: Scaled, devices: list[SeededDevice], nodes: list[RabbitNode], *, readings: int) -> None:
        self.publishers = [
            Publisher(
                nodes[index % len(nodes)].mqtt_port,
                device,
                v5=False,
                client_id=f"fleet-{index}",
                username=f"{scaled.short_id}:{device.device_id}",
            )
            for index, device in enumerate(devices)
        ]
        for publisher in self.publishers:
            publisher.publish_at_most(readings)
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=p.run, args=(self.stop,), daemon=True) for p in self.publishers]

    def __enter__(self) -> Fleet:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=10)
        for publisher in self.publishers:
            publisher.close()

    def acknowledged_count(self) -> int:
        """How many readings were acknowledged in all."""
        return sum(len(values) for values in self.acknowledged().values())

    def acknowledged(self) -> dict[str, set[int]]:
        """The readings each device had acknowledged, by device id."""
        found = {}
        for publisher in self.publishers:
            with publisher.lock:
                found[publisher.device.device_id] = set(publisher.acked)
        return found


async def _stored(dsn: str, device_ids: list[str]) -> list[tuple[str, int]]:
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT device_id, value FROM telemetry_values WHERE device_id = ANY($1::text[])", device_ids
        )
    finally:
        await connection.close()
    return [(str(row["device_id"]), int(row["value"])) for row in rows]


async def _all_acknowledged_stored(scaled: Scaled, acknowledged: dict[str, set[int]]) -> list[tuple[str, int]]:
    expected = {(device, value) for device, values in acknowledged.items() for value in values}

    async def complete() -> list[tuple[str, int]]:
        rows = await _stored(scaled.dsn, list(acknowledged))
        return rows if expected <= set(rows) else []

    try:
        rows: list[tuple[str, int]] = await poll(complete, timeout=60)
    except AssertionError:
        missing = expected - set(await _stored(scaled.dsn, list(acknowledged)))
        raise AssertionError(f"{len(missing)} of {len(expected)} acknowledged readings not stored") from None
    return rows


async def test_kill_9_of_a_hub_mid_stream_loses_no_acknowledged_reading(scaled: Scaled) -> None:
    async with admin_client(scaled.hubs[1]) as admin:
        devices = [await _seeded(admin, scaled) for _ in range(4)]
    with Fleet(scaled, devices, scaled.rabbit.nodes, readings=READINGS) as fleet:
        await poll(lambda: _some_stored(scaled, [device.device_id for device in devices], 200))
        scaled.hubs[0].process.send_signal(signal.SIGKILL)
        scaled.hubs[0].process.wait(timeout=30)
        acked_at_kill = fleet.acknowledged_count()
        # What a load balancer in front of the hubs does: node 1's auth backend requests now go to hub B.
        scaled.rabbit.use_auth_backend(scaled.backend_url(1), scaled.rabbit.nodes[0])
        # Hub B alone now: the fleet goes on to its end, and hub B gets what hub A held unacknowledged.
        try:
            await poll(lambda: _acknowledged(fleet, len(devices) * READINGS), timeout=120)
        except AssertionError:
            queue = scaled.rabbit.api("GET", f"/queues/{scaled.short_id}/mqtthub.ingest")
            state = [(p.acked_count(), p.disconnects) for p in fleet.publishers]
            raise AssertionError(f"publishers (acked, disconnects): {state}; queue: {queue.get('messages')}") from None
    assert acked_at_kill < len(devices) * READINGS, "the fleet had finished before the hub was killed"
    rows = await _all_acknowledged_stored(scaled, fleet.acknowledged())
    assert len(rows) - len(set(rows)) <= PREFETCH


async def _some_stored(scaled: Scaled, device_ids: list[str], count: int) -> bool:
    return len(await _stored(scaled.dsn, device_ids)) >= count


async def _acknowledged(fleet: Fleet, count: int) -> bool:
    return fleet.acknowledged_count() >= count
