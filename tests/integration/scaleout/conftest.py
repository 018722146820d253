"""The scale-out system: a RabbitMQ cluster per test session (per xdist worker), and per test module a fresh
PostgreSQL database with two hub processes in external broker mode on it (hub A on node 1, hub B on node 2).

Node 1 asks hub A's auth backend about its MQTT clients, node 2 asks hub B's.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.conftest import require
from tests.integration.telemetry.hubflows import SECRET_KEY
from tests.support.hubproc import HubProcess, serve_process
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
    settings: list[dict[str, Any]]
    organization_id: str
    short_id: str

    def backend_url(self, hub: int) -> str:
        """The base URL of a hub's RabbitMQ auth backend endpoints, with the shared secret as basic auth."""
        base = self.hubs[hub].http_url.replace("http://", f"http://rabbitmq:{AUTH_BACKEND_SECRET}@")
        return f"{base}/auth-backend/rabbitmq"


AUTH_BACKEND_SECRET = "scale-out-backend-secret"


def _external_settings(database_url: str, node: RabbitNode) -> dict[str, Any]:
    """Settings of a hub on ``database_url`` whose broker is the cluster, through ``node``."""
    return {
        "database_url": database_url,
        "secret_key": SECRET_KEY,
        "log_level": "warning",
        "auth_backend_secret": AUTH_BACKEND_SECRET,
        "broker": "rabbitmq",
        "rabbitmq_amqp_url": node.amqp_url,
        "rabbitmq_management_url": node.management_url,
        "rabbitmq_poll_interval": 0.5,
        "rabbitmq_prefetch": 50,
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


@contextlib.contextmanager
def scaled_system(rabbit: RabbitCluster, database: tuple[str, str], workdir: Path, **extra: Any) -> Iterator[Scaled]:
    """Hub A on node 1 and hub B on node 2, on ``database``, with ``extra`` settings; each node asks its hub."""
    url, dsn = database
    settings = [{**_external_settings(url, node), **extra} for node in rabbit.nodes]
    (workdir / "a").mkdir()
    (workdir / "b").mkdir()
    # One after the other: the first creates the schema and the first-run account.
    with serve_process(workdir / "a", **settings[0]) as hub_a, serve_process(workdir / "b", **settings[1]) as hub_b:
        scaled = Scaled(rabbit, dsn, [hub_a, hub_b], workdir, settings, hub_a.admin.org_id, hub_a.admin.short_id)
        for index, node in enumerate(rabbit.nodes):
            rabbit.use_auth_backend(scaled.backend_url(index), node)
        yield scaled


@pytest.fixture(scope="module")
def scaled(
    rabbit: RabbitCluster, database: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scaled]:
    with scaled_system(rabbit, database, tmp_path_factory.mktemp("scaled")) as scaled:
        yield scaled
