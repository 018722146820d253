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
from mqtthub.errors import StateError, UnavailableError
from mqtthub.mqtt.reason_codes import ReasonCode
from mqtthub.telemetry.writer import IngestWriter, QueueFullPolicy, WriterState


class RecordingStore:
    """Writes each item as a row and remembers batch sizes; ``gate`` holds writes until set.

    ``poison`` items fail as bad data until refused (then they are "recorded" as refused, code
    0x99). With ``full`` set the database runs out of pages: a real ``SQLITE_FULL``.
    """

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.poison: set[int] = set()
        self.refused: dict[int, str] = {}
        self.full = False
        self.fill_on_poison = False

    async def write(self, session: AsyncSession, items: Sequence[int]) -> list[int]:
        await self.gate.wait()
        self.batches.append(list(items))
        await session.execute(text(f"PRAGMA max_page_count = {1 if self.full else 1_000_000}"))
        pad = 50_000 if self.full else 0
        codes: list[int] = []
        for item in items:
            if item in self.refused:
                codes.append(ReasonCode.PAYLOAD_FORMAT_INVALID)
                continue
            if item in self.poison:
                self.full = self.full or self.fill_on_poison
                self.fill_on_poison = False
                raise ValueError(f"item {item} is poison")
            await session.execute(
                text("INSERT INTO items (n, pad) VALUES (:n, zeroblob(:pad))"), {"n": item, "pad": pad}
            )
            codes.append(ReasonCode.SUCCESS if item >= 0 else ReasonCode.PAYLOAD_FORMAT_INVALID)
        return codes

    def refuse(self, item: int, reason: str) -> None:
        self.refused[item] = reason


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    async with Database(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}") as database:
        async with database.session() as session:
            await session.execute(text("CREATE TABLE items (n INTEGER, pad BLOB)"))
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


async def test_a_poison_item_is_refused_alone(database: Database) -> None:
    store = RecordingStore()
    store.poison = {3}
    store.gate.clear()
    async with IngestWriter(database, store, max_batch=10) as writer:
        futures = [writer.submit(n) for n in range(6)]
        store.gate.set()
        codes = await asyncio.gather(*futures)
    assert codes == [0, 0, 0, ReasonCode.PAYLOAD_FORMAT_INVALID, 0, 0]
    assert store.refused == {3: "not storable (ValueError)"}
    assert (writer.refused, writer.failed, writer.outages) == (1, 0, 0)
    assert await _count(database) == 5


async def test_a_full_disk_holds_the_batch_until_space_returns(database: Database) -> None:
    store = RecordingStore()
    store.full = True
    async with IngestWriter(database, store, max_batch=4, retry_delay=0.01, max_retry_delay=0.05) as writer:
        futures = [writer.submit(n) for n in range(10)]
        await asyncio.sleep(0.3)
        assert not any(future.done() for future in futures)
        assert writer.outage is not None
        assert (writer.outage.fault.reason, writer.outage.fault.code) == ("disk full", "SQLITE_FULL")
        assert writer.outage.attempts > 2
        store.full = False
        assert await asyncio.wait_for(asyncio.gather(*futures), 10) == [0] * 10
        assert writer.outage is None
    assert (writer.outages, writer.refused, writer.failed) == (1, 0, 0)
    assert await _count(database) == 10
    # In order: the first batch was retried as it was, never split.
    assert [batch for batch in store.batches if batch][-3:] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


async def test_a_database_fault_while_items_are_retried_one_by_one_is_waited_out(database: Database) -> None:
    store = RecordingStore()
    store.poison = {2}
    store.fill_on_poison = True  # the disk fills up just as the batch is split
    store.gate.clear()
    async with IngestWriter(database, store, max_batch=10, retry_delay=0.01, max_retry_delay=0.05) as writer:
        futures = [writer.submit(n) for n in range(5)]
        store.gate.set()
        await asyncio.sleep(0.3)
        assert not any(future.done() for future in futures)
        assert writer.outage is not None
        store.full = False
        codes = await asyncio.wait_for(asyncio.gather(*futures), 10)
    assert codes == [0, 0, ReasonCode.PAYLOAD_FORMAT_INVALID, 0, 0]
    assert list(store.refused) == [2]
    assert await _count(database) == 4


async def test_hold_timeout_releases_parked_items_but_keeps_queued_ones(database: Database) -> None:
    store = RecordingStore()
    store.full = True
    writer: IngestWriter[int] = IngestWriter(
        database, store, capacity=2, max_batch=2, retry_delay=0.01, max_retry_delay=0.05, hold_timeout=0.3
    )
    async with writer:
        writing = [writer.submit(n) for n in range(2)]
        await asyncio.sleep(0.05)  # taken as a batch, failing
        queued = [writer.submit(n) for n in range(2, 4)]
        parked = writer.submit(4)
        await asyncio.sleep(0.5)
        assert parked.done()
        assert isinstance(parked.exception(), UnavailableError)
        late = writer.submit(5)
        assert isinstance(late.exception(), UnavailableError)
        assert writer.outage is not None
        assert writer.outage.released == 2
        assert not any(future.done() for future in (*writing, *queued))
        store.full = False
        assert await asyncio.wait_for(asyncio.gather(*writing, *queued), 10) == [0] * 4
    assert writer.released == 2
    assert await _count(database) == 4


async def test_closing_while_the_database_is_down_cancels_instead_of_answering(database: Database) -> None:
    store = RecordingStore()
    store.full = True
    writer: IngestWriter[int] = IngestWriter(database, store, retry_delay=0.01, max_retry_delay=0.05, close_timeout=0.2)
    async with writer:
        futures = [writer.submit(n) for n in range(3)]
        await asyncio.sleep(0.05)
    assert all(future.cancelled() for future in futures)
    assert await _count(database) == 0


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
            await session.execute(text("CREATE TABLE items (n INTEGER, pad BLOB)"))
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


async def test_items_nobody_awaits_wait_for_company_until_an_awaited_item_comes(database: Database) -> None:
    store = RecordingStore()
    writer: IngestWriter[int] = IngestWriter(database, store, max_delay=0.002, unawaited_delay=30.0)
    async with writer:
        quiet = [writer.submit(n, awaited=False) for n in (1, 2)]
        await asyncio.sleep(0.05)
        quiet.append(writer.submit(3, awaited=False))
        await asyncio.sleep(0.05)
        assert store.batches == []  # still filling: nobody waits for these
        assert await asyncio.wait_for(writer.submit(4), 5) == ReasonCode.SUCCESS
        assert [future.result() for future in quiet] == [ReasonCode.SUCCESS] * 3
        assert store.batches == [[1, 2, 3, 4]]
        later = writer.submit(5, awaited=False)
        await asyncio.sleep(0.05)
        assert not later.done()
        # Closing does not wait out the delay: what is queued is written at once.
        await asyncio.wait_for(writer.close(), 5)
    assert later.result() == ReasonCode.SUCCESS
    assert store.batches == [[1, 2, 3, 4], [5]]
    assert await _count(database) == 5


async def test_a_full_batch_of_items_nobody_awaits_goes_at_once(database: Database) -> None:
    store = RecordingStore()
    writer: IngestWriter[int] = IngestWriter(database, store, max_batch=3, unawaited_delay=30.0)
    async with writer:
        futures = [writer.submit(n, awaited=False) for n in range(2)]
        await asyncio.sleep(0.05)
        futures.append(writer.submit(2, awaited=False))
        assert await asyncio.wait_for(asyncio.gather(*futures), 5) == [ReasonCode.SUCCESS] * 3
    assert store.batches == [[0, 1, 2]]
