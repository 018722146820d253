"""Losing a RabbitMQ node while devices publish: devices on the other node go on, nothing acknowledged is lost.

The ingest queue is mirrored on both nodes (``ha-mode: all``), so when node 1 dies its mirror on node 2 takes over
and hub B, connected to node 2, drains it. This module kills a node of a cluster of its own: the session's cluster
stays whole for the other tests.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import require
from tests.integration.scaleout.conftest import Scaled
from tests.integration.scaleout.fleet import (
    READINGS,
    Fleet,
    acknowledged,
    all_acknowledged_stored,
    all_done,
    seeded_device,
)
from tests.integration.telemetry.hubflows import admin_client, poll
from tests.support.rabbitmq import RabbitCluster, rabbit_cluster, rabbitmq_installed

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def rabbit() -> Iterator[RabbitCluster]:
    """A cluster for this module alone (a node of it gets killed)."""
    require(rabbitmq_installed(), "RabbitMQ (apt-get install rabbitmq-server)")
    with rabbit_cluster() as cluster:
        yield cluster


async def test_with_one_node_killed_devices_on_the_other_keep_publishing_and_nothing_acknowledged_is_lost(
    scaled: Scaled,
) -> None:
    first, second = scaled.rabbit.nodes
    async with admin_client(scaled.hubs[1]) as admin:
        devices = [await seeded_device(admin, scaled) for _ in range(4)]
    with Fleet(scaled, devices, [first, second], readings=READINGS) as fleet:
        await poll(lambda: acknowledged(fleet, 100))
        scaled.rabbit.kill(first)
        survivors = fleet.publishers[1::2]  # the devices on node 2
        before = sum(publisher.acked_count() for publisher in survivors)
        assert before < len(survivors) * READINGS, "the devices had finished before the node was killed"
        await poll(lambda: all_done(survivors, READINGS), timeout=120)
    await all_acknowledged_stored(scaled, fleet.acknowledged())
