"""Paho devices publishing numbered QoS 1 readings through RabbitMQ, and checks that what was acknowledged is stored."""

from __future__ import annotations

import threading

import asyncpg

from tests.integration.scaleout.conftest import Scaled
from tests.integration.telemetry.hubflows import Admin, poll
from tests.integration.telemetry.publisher import Publisher
from tests.integration.telemetry.support import SeededDevice
from tests.support.rabbitmq import RabbitNode

READINGS = 500
"""Readings each device publishes: bounded, so the backlog a loaded machine builds up is drained in time."""
PREFETCH = 50
"""``MQTTHUB_RABBITMQ_PREFETCH`` of the test hubs: what a hub killed after its commit may leave to be stored again."""


async def seeded_device(admin: Admin, scaled: Scaled) -> SeededDevice:
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


async def stored(dsn: str, device_ids: list[str]) -> list[tuple[str, int]]:
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT device_id, value FROM telemetry_values WHERE device_id = ANY($1::text[])", device_ids
        )
    finally:
        await connection.close()
    return [(str(row["device_id"]), int(row["value"])) for row in rows]


async def all_acknowledged_stored(scaled: Scaled, acknowledged: dict[str, set[int]]) -> list[tuple[str, int]]:
    expected = {(device, value) for device, values in acknowledged.items() for value in values}

    async def complete() -> list[tuple[str, int]]:
        rows = await stored(scaled.dsn, list(acknowledged))
        return rows if expected <= set(rows) else []

    try:
        rows: list[tuple[str, int]] = await poll(complete, timeout=60)
    except AssertionError:
        missing = expected - set(await stored(scaled.dsn, list(acknowledged)))
        raise AssertionError(f"{len(missing)} of {len(expected)} acknowledged readings not stored") from None
    return rows


async def some_stored(scaled: Scaled, device_ids: list[str], count: int) -> bool:
    return len(await stored(scaled.dsn, device_ids)) >= count


async def acknowledged(fleet: Fleet, count: int) -> bool:
    return fleet.acknowledged_count() >= count


async def all_done(publishers: list[Publisher], readings: int) -> bool:
    """Whether every one of ``publishers`` had all its readings acknowledged."""
    return all(publisher.acked_count() >= readings for publisher in publishers)
