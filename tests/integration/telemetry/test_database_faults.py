"""A database that refuses writes while the hub runs: messages are held, not acknowledged, and health says so.

The fault is real: on PostgreSQL the database turns read-only (and the writer's connection is
cut, so it reconnects into a read-only session); on SQLite another connection holds the write
lock past the busy timeout.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from mqtthub.errors import UnavailableError
from mqtthub.models import TelemetryValue
from mqtthub.telemetry.routing import Route
from tests.integration.telemetry.conftest import Stack
from tests.integration.telemetry.support import PahoDevice


@asynccontextmanager
async def refused_writes(stack: Stack) -> AsyncIterator[str]:
    """Make the stack's database refuse writes inside the block; yields the reason the writer should report."""
    url = make_url(stack.database.url)
    if url.get_backend_name() == "sqlite":
        blocker = sqlite3.connect(str(url.database), isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            yield "database busy"
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        return
    admin = await asyncpg.connect(url.set(drivername="postgresql", database="postgres").render_as_string(False))
    terminate = (
        "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()"
    )
    try:
        await admin.execute(f'ALTER DATABASE "{url.database}" SET default_transaction_read_only = on')
        await admin.execute(terminate, url.database)
        yield "read-only"
        await admin.execute(f'ALTER DATABASE "{url.database}" RESET default_transaction_read_only')
        await admin.execute(terminate, url.database)
    finally:
        await admin.close()


async def _stored(stack: Stack) -> int:
    async with stack.database.session() as session:
        return int(await session.scalar(select(func.count()).select_from(TelemetryValue)) or 0)


async def test_refused_writes_hold_messages_and_report_the_fault(stack: Stack) -> None:
    device = await asyncio.to_thread(PahoDevice(stack.port, stack.a, v5=False).connect)
    topic = f"devices/{stack.a.device_id}/datastream"
    reading = {"value": 1, "telemetryDataId": stack.a.definition_id}
    try:
        assert await asyncio.to_thread(device.publish, topic, reading) == 0
        assert stack.telemetry.health() == {"status": "up", "heldItems": 0}
        async with refused_writes(stack) as reason:
            held = asyncio.create_task(asyncio.to_thread(device.publish, topic, reading))
            deadline = asyncio.get_running_loop().time() + 30
            # The latest fault is reported (on PostgreSQL "connection lost" first, then "read-only").
            while (report := stack.telemetry.health()).get("reason") != reason:
                assert asyncio.get_running_loop().time() < deadline, f"the fault was not noticed: {report}"
                await asyncio.sleep(0.05)
            assert report["status"] == "down"
            assert report["heldItems"] == 1
            assert not held.done()  # no PUBACK (a 3.1.1 client would take any PUBACK as "stored")
            with pytest.raises(UnavailableError) as refused:
                await stack.telemetry.ingest_http(
                    Route.DATASTREAM, stack.a.device_id, stack.a.organization_id, b'{"value": 2, "telemetryDataId": 1}'
                )
            assert refused.value.retry_after is not None
            await asyncio.sleep(0.3)
            assert not held.done()
        assert await asyncio.wait_for(held, 30) == 0
    finally:
        await asyncio.to_thread(device.close)
    assert stack.telemetry.health()["status"] == "up"  # recovery cleared it
    assert "reason" not in stack.telemetry.health()
    assert await _stored(stack) == 2
    assert stack.telemetry.writer.outages == 1
    assert stack.telemetry.writer.refused == 0
