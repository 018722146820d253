"""A committed change reaches the connector even when the database is down as the connector reloads it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from mqtthub.db import Database
from mqtthub.db.migrate import upgrade
from mqtthub.integrations import repository
from mqtthub.integrations.outbound import OutboundFence
from mqtthub.integrations.repository import IntegrationConfigChanged
from mqtthub.integrations.schemas import MqttConfigIn
from mqtthub.integrations.service import IntegrationService
from mqtthub.models import Product
from tests.conftest import require
from tests.integration.integrations.conftest import wait_until
from tests.integration.integrations.mosquitto import PASSWORD, USERNAME, Mosquitto
from tests.integration.integrations.seeding import SECRETS, seed, settings_for
from tests.support.postgres import PostgresServer, find_postgres_bin, running_postgres

pytestmark = pytest.mark.postgres


@pytest.fixture
def server() -> Iterator[PostgresServer]:
    """A PostgreSQL server of the test's own: it is stopped and started again."""
    require(find_postgres_bin() is not None, "PostgreSQL (apt-get install postgresql)")
    with running_postgres() as server:
        yield server


@pytest.fixture
async def database(server: PostgresServer) -> AsyncIterator[Database]:
    connection = await asyncpg.connect(server.url.replace("postgresql+asyncpg", "postgresql") + "/postgres")
    try:
        await connection.execute('CREATE DATABASE "hub"')
    finally:
        await connection.close()
    url = f"{server.url}/hub"
    await upgrade(url)
    async with Database(url) as opened:
        yield opened


async def test_a_reload_that_finds_the_database_down_is_retried(
    server: PostgresServer, database: Database, mosquitto: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    product_id, _ = await seed(database, mosquitto, [{"name": "tick", "actions": [{"type": "store"}]}])
    async with IntegrationService(database, SECRETS, settings_for(tmp_path), reload_retry=0.2) as service:
        await wait_until(lambda: (status := service.status(product_id)) is not None and status.connected)
        status = service.status(product_id)
        assert status is not None
        first_connect = status.last_connected_at
        # Changed by another process (nobody here follows its commits), then announced while the database is down.
        async with Database(database.url) as other, other.session() as session:
            product = await session.get(Product, product_id)
            assert product is not None
            body = {"host": "127.0.0.1", "port": mosquitto.tcp_port, "username": USERNAME, "password": PASSWORD}
            await repository.save_config(
                session,
                product,
                MqttConfigIn.model_validate({"broker": body | {"keep_alive": 30}}),
                SECRETS,
                OutboundFence("127.0.0.1"),
            )
        await asyncio.to_thread(server.stop, "fast")
        with caplog.at_level(logging.INFO, logger="mqtthub.integrations.service"):
            database.changes.publish(IntegrationConfigChanged(product_id))
            await wait_until(lambda: "still cannot reload product" in caplog.text, what="a failed reload, retried")
            assert status.last_connected_at == first_connect  # the connector kept running as it was
            await asyncio.to_thread(server.start)
            await wait_until(
                lambda: status.connected and status.last_connected_at != first_connect,
                what="the reload after the outage",
            )
            await wait_until(lambda: "reloaded after failing" in caplog.text, what="the recovery logged")
        assert service.tasks.restarts == {}  # retried inside the loop, which never crashed
        failures = [r for r in caplog.records if "cannot reload product" in r.getMessage()]
        assert failures[0].exc_info is not None  # the first failure with its traceback …
        assert len(failures) >= 2
        assert all(r.exc_info is None for r in failures[1:])  # … each retry in one line
        assert f"product {product_id} reloaded after failing" in caplog.text  # and the recovery, once
