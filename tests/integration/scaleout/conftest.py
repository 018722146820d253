"""The RabbitMQ cluster every scale-out test shares: one per test session (per xdist worker), on ephemeral ports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import require
from tests.support.rabbitmq import RabbitCluster, rabbit_cluster, rabbitmq_installed


@pytest.fixture(scope="session")
def rabbit() -> Iterator[RabbitCluster]:
    """A 2-node RabbitMQ cluster with the MQTT, Web MQTT, management and HTTP auth backend plugins."""
    require(rabbitmq_installed(), "RabbitMQ (apt-get install rabbitmq-server)")
    with rabbit_cluster() as cluster:
        yield cluster
