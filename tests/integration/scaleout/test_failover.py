"""Losing a hub while devices publish: nothing RabbitMQ acknowledged to a device is lost.

A device's QoS 1 PUBACK comes from RabbitMQ once its message is in the mirrored ingest queue; the hubs take it from
there and acknowledge it to RabbitMQ only after their commit. So the acknowledged readings of every device must all
end up stored, whatever dies. A reading may be stored twice when a hub dies between its commit and its
acknowledgement (docs/scale-out.md): the test checks that nothing is missing, and that duplicates stay that rare.
"""

from __future__ import annotations

import signal

import pytest

from tests.integration.scaleout.conftest import Scaled
from tests.integration.scaleout.fleet import (
    PREFETCH,
    READINGS,
    Fleet,
    acknowledged,
    all_acknowledged_stored,
    seeded_device,
    some_stored,
)
from tests.integration.telemetry.hubflows import admin_client, poll

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(300)]


KILL_READINGS = 4 * READINGS
"""Readings per device here: the kill must find the fleet still publishing, and RabbitMQ acknowledges 2,000 readings
before the hubs have stored the first 200 on a fast run."""


async def test_kill_9_of_a_hub_mid_stream_loses_no_acknowledged_reading(scaled: Scaled) -> None:
    async with admin_client(scaled.hubs[1]) as admin:
        devices = [await seeded_device(admin, scaled) for _ in range(4)]
    with Fleet(scaled, devices, scaled.rabbit.nodes, readings=KILL_READINGS) as fleet:

        async def mid_stream() -> bool:
            # Every device past its first acknowledged reading as well: RabbitMQ before 3.12 checks a connection's
            # first publish with the auth backend and, when that backend is gone, leaves the connection open and
            # never acknowledging (docs/scale-out.md), which is not what this test is about.
            publishing = all(publisher.acked_count() > 0 for publisher in fleet.publishers)
            return publishing and await some_stored(scaled, [device.device_id for device in devices], 200)

        await poll(mid_stream)
        scaled.hubs[0].process.send_signal(signal.SIGKILL)
        scaled.hubs[0].process.wait(timeout=30)
        acked_at_kill = fleet.acknowledged_count()
        # What a load balancer in front of the hubs does: node 1's auth backend requests now go to hub B.
        scaled.rabbit.use_auth_backend(scaled.backend_url(1), scaled.rabbit.nodes[0])
        # Hub B alone now: the fleet goes on to its end, and hub B gets what hub A held unacknowledged.
        try:
            await poll(lambda: acknowledged(fleet, len(devices) * KILL_READINGS), timeout=120)
        except AssertionError:
            queue = scaled.rabbit.api("GET", f"/queues/{scaled.short_id}/mqtthub.ingest")
            state = [(p.acked_count(), p.disconnects) for p in fleet.publishers]
            raise AssertionError(f"publishers (acked, disconnects): {state}; queue: {queue.get('messages')}") from None
    assert acked_at_kill < len(devices) * KILL_READINGS, "the fleet had finished before the hub was killed"
    rows = await all_acknowledged_stored(scaled, fleet.acknowledged())
    assert len(rows) - len(set(rows)) <= PREFETCH
