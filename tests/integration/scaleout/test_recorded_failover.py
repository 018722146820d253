"""Losing a hub while devices publish on a recorded filter: every message RabbitMQ acknowledged is recorded.

A device's QoS 1 PUBACK comes from RabbitMQ once its message is in the mirrored queues, the recorded-filters queue
among them; a hub acknowledges a message of that queue only once its history row is committed. So whatever hub
dies, every acknowledged message ends up in the history, at most the prefetch of the dead hub twice (committed but
not yet acknowledged when it died, docs/scale-out.md).
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator

import pytest

from tests.integration.scaleout.conftest import Scaled
from tests.integration.scaleout.fleet import PREFETCH, READINGS, Fleet, acknowledged, seeded_device
from tests.integration.scaleout.recorded import binding_keys, consumed_by_both_hubs, history, recorded_system
from tests.integration.telemetry.hubflows import admin_client, poll
from tests.support.rabbitmq import RabbitCluster

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def scaled(
    rabbit: RabbitCluster, database: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scaled]:
    yield from recorded_system(rabbit, database, tmp_path_factory.mktemp("recorded-failover"))


async def _recorded(scaled: Scaled) -> list[tuple[str, int]]:
    """The ``(device, reading)`` of every history row of the devices' datastream topics."""
    rows = await history(scaled, "devices/%/datastream")
    return [(topic.split("/")[1], int(json.loads(payload)["value"])) for topic, payload in rows]


async def test_kill_9_of_a_hub_mid_stream_loses_no_acknowledged_recorded_message(scaled: Scaled) -> None:
    async with admin_client(scaled.hubs[0]) as admin:
        await admin.call("POST", "/subscribe", json={"topic": "devices/+/datastream", "qos": 1})
        devices = [await seeded_device(admin, scaled) for _ in range(4)]

    async def bound() -> bool:
        return "devices.*.datastream" in await binding_keys(scaled)

    assert await poll(lambda: consumed_by_both_hubs(scaled))
    assert await poll(bound)
    with Fleet(scaled, devices, scaled.rabbit.nodes, readings=READINGS) as fleet:

        async def some_recorded() -> bool:
            return len(await _recorded(scaled)) >= 100

        await poll(some_recorded)
        scaled.hubs[0].process.send_signal(signal.SIGKILL)
        scaled.hubs[0].process.wait(timeout=30)
        recorded_at_kill = len(await _recorded(scaled))
        # What a load balancer in front of the hubs does: node 1's auth backend requests now go to hub B.
        scaled.rabbit.use_auth_backend(scaled.backend_url(1), scaled.rabbit.nodes[0])
        await poll(lambda: acknowledged(fleet, len(devices) * READINGS), timeout=120)
    # RabbitMQ acknowledges to the devices at its own pace: what matters is that the hubs were still recording.
    assert recorded_at_kill < len(devices) * READINGS, "everything was recorded before the hub was killed"
    expected = {(device, value) for device, values in fleet.acknowledged().items() for value in values}

    async def all_recorded() -> list[tuple[str, int]]:
        rows = await _recorded(scaled)
        return rows if expected <= set(rows) else []

    try:
        rows: list[tuple[str, int]] = await poll(all_recorded, timeout=60)
    except AssertionError:
        missing = expected - set(await _recorded(scaled))
        raise AssertionError(f"{len(missing)} of {len(expected)} acknowledged messages not recorded") from None
    assert len(rows) - len(set(rows)) <= PREFETCH
