"""The ingest writer's group commit and queue-full policies, against a real SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mqtthub.db import Database
from mqtthub.errors import StateError
from mqtthub.mqtt.reason_codes import ReasonCode
from mqtthub.telemetry.writer import IngestWriter, QueueFullPolicy, WriterState


class RecordingStore:
    """Writes each item as a row and remembers batch sizes; ``gate`` holds writes until set."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.poison: set[int] = set()

    async def write(self, session: AsyncSession, items: Sequence[int]) -> list[int]:
        await self.gate.wait()
        self.batches.append(list(items))
        for item in items:
            if item in self.poison:
                raise ValueError(f"item {item} is poison")
            await session.execute(text("INSERT INTO items (n) VALUES (:n)"), {"n": item})
        return [ReasonCode.SUCCESS if item >= 0 else ReasonCode.PAYLOAD_FORMAT_INVALID for item in items]


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    async with Database(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}") as database:
        async with database.session() as session:
            await session.execute(text("CREATE TABLE items (n INTEGER)"))
        yield database


async def _count(database: Database) -> int:
    async with database.session() as session:
        return int((await session.execute(text("SELECT count(*) FROM items"))).scalar_one())


async def test_futures_resolve_after_commit_in_batches(database: Database) -> None:
    store = RecordingStore()
    committed: list[int] = []
    writer: IngestWriter[int] = IngestWriter(
        database, store, max_batch=50, on_committed=lambda items, codes: committed.extend(items)
    )
    async with writer:
        store.gate.clear()
        futures = [writer.submit(n) for n in range(200)]
        await asyncio.sleep(0.05)
        assert not any(future.done() for future in futures)
        store.gate.set()
        codes = await asyncio.gather(*futures)
    assert codes == [0] * 200
    assert await _count(database) == 200
    assert committed == list(range(200))
    assert max(len(batch) for batch in store.batches) == 50
    assert len(store.batches) < 200


async def test_codes_are_per_item(database: Database) -> None:
    async with IngestWriter(database, RecordingStore()) as writer:
        assert await writer.submit(-1) == ReasonCode.PAYLOAD_FORMAT_INVALID
        assert await writer.submit(1) == ReasonCode.SUCCESS


async def test_full_queue_parks_waiting_items_and_drops_qos0(database: Database) -> None:
    store = RecordingStore()
    store.gate.clear()
    async with IngestWriter(database, store, capacity=5, max_batch=5) as writer:
        first = [writer.submit(n) for n in range(5)]
        await asyncio.sleep(0.02)  # the writer takes those five and waits on the gate
        queued = [writer.submit(n) for n in range(5, 10)]
        parked = [writer.submit(n) for n in range(10, 13)]
        dropped = writer.submit(99, policy=QueueFullPolicy.DROP_NEWEST)
        assert dropped.done()
        assert dropped.result() == ReasonCode.QUOTA_EXCEEDED
        assert writer.dropped == 1
        assert writer.parked_total == 3
        assert not any(future.done() for future in parked)
        store.gate.set()
        assert await asyncio.gather(*first, *queued, *parked) == [0] * 13
    assert await _count(database) == 13


async def test_a_poison_item_fails_alone(database: Database) -> None:
    store = RecordingStore()
    store.poison = {3}
    store.gate.clear()
    async with IngestWriter(database, store, max_batch=10) as writer:
        futures = [writer.submit(n) for n in range(6)]
        store.gate.set()
        codes = await asyncio.gather(*futures)
    assert codes == [0, 0, 0, ReasonCode.UNSPECIFIED_ERROR, 0, 0]
    assert writer.failed == 1
    assert await _count(database) == 5


async def test_close_writes_what_is_queued_then_refuses(database: Database) -> None:
    writer: IngestWriter[int] = IngestWriter(database, RecordingStore(), max_delay=0.05)
    async with writer:
        futures = [writer.submit(n) for n in range(20)]
    assert all(future.done() and future.result() == 0 for future in futures)
    assert await _count(database) == 20
    assert writer.state is WriterState.CLOSED
    with pytest.raises(StateError):
        writer.submit(1)
    with pytest.raises(StateError):
        await writer.__aenter__()


async def test_a_locked_database_delays_the_acknowledgement(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    async with Database(f"sqlite+aiosqlite:///{path}") as database:
        async with database.session() as session:
            await session.execute(text("CREATE TABLE items (n INTEGER)"))
        # Another connection holds the write lock: the item waits (busy timeout, then retries), never lost.
        blocker = sqlite3.connect(path, timeout=0.1)
        blocker.execute("BEGIN IMMEDIATE")
        async with Database(f"sqlite+aiosqlite:///{path}") as other:
            writer: IngestWriter[int] = IngestWriter(other, RecordingStore(), retry_delay=0.01)
            async with writer:
                future = writer.submit(1)
                await asyncio.sleep(0.3)
                assert not future.done()
                blocker.rollback()
                blocker.close()
                assert await asyncio.wait_for(future, 30) == 0
        assert await _count(database) == 1
