"""The scale-out system: a RabbitMQ cluster per test session (per xdist worker), and per test module a fresh
PostgreSQL database with two hub processes in external broker mode on it (hub A on node 1, hub B on node 2).

Node 1 asks hub A's auth backend about its MQTT clients, node 2 asks hub B's.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import require
from tests.integration.telemetry.hubflows import admin_client, hub_env, short_id_of
from tests.support.hubproc import HubProcess, run_hub
from tests.support.rabbitmq import RabbitCluster, RabbitNode, rabbit_cluster, rabbitmq_installed


@pytest.fixture(scope="session")
def rabbit() -> Iterator[RabbitCluster]:
    """A 2-node RabbitMQ cluster with the MQTT, Web MQTT, management and HTTP auth backend plugins."""
    require(rabbitmq_installed(), "RabbitMQ (apt-get install rabbitmq-server)")
    with rabbit_cluster() as cluster:
        yield cluster


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

    def backend_url(self, hub: int) -> str:
        """The base URL of a hub's RabbitMQ auth backend endpoints, with the shared secret as basic auth."""
        base = self.hubs[hub].http_url.replace("http://", f"http://rabbitmq:{AUTH_BACKEND_SECRET}@")
        return f"{base}/auth-backend/rabbitmq"


AUTH_BACKEND_SECRET = "scale-out-backend-secret"


def _external_env(database_url: str, node: RabbitNode) -> dict[str, str]:
    return hub_env(database_url) | {
        "MQTTHUB_AUTH_BACKEND_SECRET": AUTH_BACKEND_SECRET,
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
        scaled = Scaled(rabbit, dsn, [hub_a, hub_b], workdir, env, organization_id, short_id)
        for index, node in enumerate(rabbit.nodes):
            rabbit.use_auth_backend(scaled.backend_url(index), node)
        yield scaled
