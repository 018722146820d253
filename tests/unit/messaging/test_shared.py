"""Recorded filters shared by several hubs (services on one database), with the in-memory shared-queue fake."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from mqtthub.broker.hooks import BrokerMessage
from mqtthub.db import Database
from mqtthub.db.migrate import upgrade
from mqtthub.errors import UnavailableError
from mqtthub.messaging.namespace import OrgScope
from mqtthub.messaging.recorder import HistoryRecorder, Record
from mqtthub.messaging.service import MessagingService
from mqtthub.messaging.shared import NOT_STORED, STORED, RecordedSink
from mqtthub.models import HistoryMessage, Organization
from mqtthub.models.messaging import MAX_RECORDED_TOPIC_LENGTH
from tests.unit.messaging.fakes import FakeBroker, FakeSharedQueues
from tests.unit.messaging.test_service import A, settings, subscribe

SYNC = 0.05
"""Seconds between two reads of the recorded filters by a service."""


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """A migrated SQLite or PostgreSQL database with one organization."""
    await upgrade(database_url)
    async with Database(database_url) as database:
        async with database.session() as session:
            session.add(Organization(id="org-a", name="A", short_id="aaaaaa"))
        yield database


async def _rows(database: Database) -> list[tuple[str, bytes]]:
    async with database.session() as session:
        rows = await session.execute(select(HistoryMessage.topic, HistoryMessage.payload))
        return sorted((topic, payload) for topic, payload in rows.all())


def _hub(database: Database, broker: FakeBroker, shared: FakeSharedQueues) -> MessagingService:
    return MessagingService(settings(), database, broker, shared=shared, sync_interval=SYNC)


async def test_a_message_is_stored_once_by_the_hub_that_takes_it_and_only_then_answered(database: Database) -> None:
    broker, shared = FakeBroker(), FakeSharedQueues()
    async with _hub(database, broker, shared) as hub_a, _hub(database, broker, shared) as hub_b:
        await subscribe(hub_a, A, "m/#")
        await subscribe(hub_a, A, "m/+")
        assert shared.bindings == {"org/aaaaaa/m/#", "org/aaaaaa/m/+"}
        follower = hub_a.live.subscribe("org-a", None)
        # A message routed to this hub by the broker goes to its live clients, but is not written from there.
        await broker.publish("org/aaaaaa/m/1", b"live")
        assert json.loads((await follower.get()).text)["id"] is None
        stored = shared.deliver("org/aaaaaa/m/1", b"once", hub=1)
        assert stored is not None
        assert await stored == STORED
        assert await _rows(database) == [("m/1", b"once")]  # committed before the answer
        assert shared.deliver("org/aaaaaa/other", b"x") is None
        # Hub B learns the filters from the database.
        for _ in range(100):
            if hub_b.filters("org-a") == ["m/#", "m/+"]:
                break
            await asyncio.sleep(SYNC)
        assert hub_b.filters("org-a") == ["m/#", "m/+"]


async def test_a_filter_dropped_through_one_hub_is_followed_by_the_other(database: Database) -> None:
    broker, shared = FakeBroker(), FakeSharedQueues()
    async with _hub(database, broker, shared) as hub_a, _hub(database, broker, shared) as hub_b:
        await subscribe(hub_a, A, "gone/#")
        async with database.session() as session:
            await hub_b.unsubscribe(session, A, "gone/#")  # hub B never saw it recorded
        assert shared.bindings == set()
        for _ in range(100):
            if not hub_a.filters("org-a") and not hub_b.filters("org-a"):
                break
            await asyncio.sleep(SYNC)
        assert (hub_a.filters("org-a"), hub_b.filters("org-a")) == ([], [])
        assert shared.bindings == set()


async def test_a_stopped_hub_stores_nothing_more_and_says_so(database: Database) -> None:
    broker, shared = FakeBroker(), FakeSharedQueues()
    async with _hub(database, broker, shared) as hub:
        await subscribe(hub, A, "late/#")
    stored = shared.deliver("org/aaaaaa/late/1", b"x")
    assert stored is not None
    with pytest.raises(UnavailableError):
        await stored  # the queue gets it back for another hub
    assert await _rows(database) == []


async def test_the_sink_answers_what_it_cannot_store_as_refused(database: Database) -> None:
    recorder = HistoryRecorder(database)
    writer = asyncio.create_task(recorder.run())
    organizations = {"aaaaaa": A}

    async def scope_of(short_id: str) -> OrgScope | None:
        return organizations.get(short_id)

    sink = RecordedSink(recorder, scope_of, retry_delay=0)
    try:
        assert await sink.offer(BrokerMessage("org/zzzzzz/a", b"x", 1)) == NOT_STORED  # no such organization
        assert await sink.offer(BrokerMessage("global/a", b"x", 1)) == NOT_STORED  # outside every organization
        long_topic = "org/aaaaaa/" + "t" * (MAX_RECORDED_TOPIC_LENGTH + 1)
        assert await sink.offer(BrokerMessage(long_topic, b"x", 1)) == NOT_STORED
        assert sink.skipped == 3
        assert await sink.offer(BrokerMessage("org/aaaaaa/a", b"kept", 1)) == STORED
        assert await _rows(database) == [("a", b"kept")]
    finally:
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)


async def test_a_stored_record_dropped_as_the_oldest_fails(database: Database) -> None:
    recorder = HistoryRecorder(database, max_queued=1)
    message = BrokerMessage("t", b"x", 1, received_at=1.0)
    first = recorder.store(Record.of("org-a", "t", message))
    second = recorder.store(Record.of("org-a", "t", message))
    with pytest.raises(UnavailableError, match="dropped"):
        await first
    assert recorder.dropped == 1
    recorder.close()
    with pytest.raises(UnavailableError, match="stopped"):
        await second


class _StuckRecorder(HistoryRecorder):
    """A writer whose database never answers (the one seam faked here)."""

    async def _insert(self, records: list[Record]) -> None:
        await asyncio.Event().wait()


async def test_records_being_written_when_the_writer_stops_fail(database: Database) -> None:
    recorder = _StuckRecorder(database)
    writer = asyncio.create_task(recorder.run())
    stored = recorder.store(Record.of("org-a", "t", BrokerMessage("t", b"x", 1, received_at=1.0)))
    await asyncio.sleep(0.05)  # taken into a batch, being written
    writer.cancel()
    await asyncio.gather(writer, return_exceptions=True)
    with pytest.raises(UnavailableError, match="stopped"):
        await stored


async def test_a_failed_lookup_fails_the_message_after_the_retry_delay(database: Database) -> None:
    async def scope_of(short_id: str) -> OrgScope | None:
        raise OSError("database down")

    sink = RecordedSink(HistoryRecorder(database), scope_of, retry_delay=0.2)
    started = asyncio.get_running_loop().time()
    with pytest.raises(OSError, match="database down"):
        await sink.offer(BrokerMessage("org/aaaaaa/a", b"x", 1))
    assert asyncio.get_running_loop().time() - started >= 0.2
