"""PostgreSQL stopped under load (``pg_ctl -m fast``, ``-m immediate``) and started again: no acknowledged loss."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import require
from tests.integration.telemetry.hubflows import started_hub
from tests.integration.telemetry.outage import Fault, ride_out_an_outage
from tests.support.postgres import PostgresServer, find_postgres_bin, running_postgres

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def server() -> Iterator[PostgresServer]:
    """A server of the test's own: it is stopped and started again."""
    require(find_postgres_bin() is not None, "PostgreSQL (apt-get install postgresql)")
    with running_postgres() as server:
        yield server


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_postgresql_stopped_and_restarted_under_load(server: PostgresServer, mode: str, tmp_path: Path) -> None:
    connection = await asyncpg.connect(server.url.replace("postgresql+asyncpg", "postgresql") + "/postgres")
    try:
        await connection.execute('CREATE DATABASE "hub"')
    finally:
        await connection.close()
    database_url = f"{server.url}/hub"

    async def stop() -> None:
        await asyncio.to_thread(server.stop, mode)

    async def start() -> None:
        await asyncio.to_thread(server.start)

    with started_hub(tmp_path, database_url) as hub:
        report = await ride_out_an_outage(hub, database_url, Fault(stop, start, seconds=4.0))
        log = "\n".join(hub.stderr)
    # The fault is reported by kind: refused connections, or the server shutting down (57P01, 57P03).
    assert report.reasons <= {"connection lost", "server shut down", "server starting up or shutting down"}, report
    # Logged once per episode, not per message.
    assert log.count("database writes failing") == 1, log
    assert log.count("database writes recovered") == 1, log
