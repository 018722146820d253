"""The history writer: messages offered on the broker's routing path, written to the database in batches.

``offer`` never blocks: it appends to a bounded queue whose overflow policy is **drop
oldest** (counted in ``dropped``), so a database slower than the message rate loses the
oldest unwritten history instead of stalling the broker. :meth:`HistoryRecorder.run` is
the writer loop; :meth:`HistoryRecorder.flushed` lets a reader wait until everything
offered before it has been written, so ``GET /messages`` right after a publish sees it.

:meth:`HistoryRecorder.store` queues a record the same way and returns a future resolved once its row is
committed, or failed when it was not (dropped as the oldest, or the write failed): with an external broker the
hubs acknowledge a recorded message to it only then (see :mod:`.shared`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime

from mqtthub.broker.episodes import EpisodeLog
from mqtthub.broker.hooks import BrokerMessage
from mqtthub.db import Database
from mqtthub.db.base import new_id, utcnow
from mqtthub.errors import UnavailableError
from mqtthub.models.messaging import HistoryMessage

logger = logging.getLogger(__name__)
episodes = EpisodeLog()
"""Failures that repeat per message are logged once per episode (see :mod:`mqtthub.broker.episodes`)."""


@dataclass(frozen=True, slots=True)
class Record:
    """A message to write to an organization's history (topic without the namespace prefix)."""

    organization_id: str
    topic: str
    payload: bytes
    qos: int
    retain: bool
    received_at: datetime
    id: str

    @classmethod
    def of(cls, organization_id: str, topic: str, message: BrokerMessage) -> Record:
        """The record of a broker message of an organization's ``topic``, with a new history id."""
        received = datetime.fromtimestamp(message.received_at, UTC) if message.received_at else utcnow()
        return cls(organization_id, topic, message.payload, message.qos, message.retain, received, new_id())


class HistoryRecorder:
    """A bounded queue of records and the loop that writes them."""

    def __init__(self, database: Database, *, max_queued: int = 10_000, batch_size: int = 500) -> None:
        self._database = database
        self._queue: deque[tuple[int, Record, asyncio.Future[None] | None]] = deque()
        self._max_queued = max_queued
        self._batch_size = batch_size
        self._offered = 0
        self._written = 0
        self._wake = asyncio.Event()
        self._progress = asyncio.Condition()
        self._closed = False
        self.recorded = 0
        self.dropped = 0
        self.failed = 0

    def offer(self, record: Record) -> None:
        """Queue a record for writing; drops the oldest queued record when full."""
        self._append(record, None)

    def store(self, record: Record) -> asyncio.Future[None]:
        """Queue a record like :meth:`offer`; the future resolves once its row is committed.

        It fails with :class:`~mqtthub.errors.UnavailableError` when the row was not written: dropped as the oldest
        queued record, or refused by the database.
        """
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._closed:
            _settle(done, "the history writer is stopped")
        else:
            self._append(record, done)
        return done

    def close(self) -> None:
        """Give up the records still queued (the writer is stopped): every :meth:`store` future fails, now and
        later, so whoever waits on one hands its message back to where it came from."""
        self._closed = True
        while self._queue:
            _settle(self._queue.popleft()[2], "the history writer is stopped")

    def _append(self, record: Record, done: asyncio.Future[None] | None) -> None:
        if len(self._queue) >= self._max_queued:
            _, _, dropped = self._queue.popleft()
            self.dropped += 1
            _settle(dropped, "dropped: the history writer is behind")
        self._offered += 1
        self._queue.append((self._offered, record, done))
        self._wake.set()

    async def flushed(self, wait: float = 5.0) -> bool:
        """Wait up to ``wait`` seconds until every record offered so far is written (or given up on).

        Returns:
            False if that took longer than ``wait``.
        """
        target = self._offered
        async with self._progress:
            try:
                async with asyncio.timeout(wait):
                    await self._progress.wait_for(lambda: self._written >= target)
            except TimeoutError:
                return False
        return True

    async def written_at_least(self, count: int) -> None:
        """Wait until :attr:`recorded` reaches ``count``."""
        async with self._progress:
            await self._progress.wait_for(lambda: self.recorded >= count)

    async def run(self) -> None:
        """Write queued records until cancelled."""
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
            batch = [self._queue.popleft() for _ in range(min(len(self._queue), self._batch_size))]
            try:
                await self._write([(record, done) for _, record, done in batch])
            except asyncio.CancelledError:
                # Stopped mid-write: whoever waits on these rows must not wait for ever (they may be written
                # twice, by another hub, if the commit went through).
                for _, _, done in batch:
                    _settle(done, "the history writer is stopped")
                raise
            async with self._progress:
                self._written = batch[-1][0]
                self._progress.notify_all()

    async def _write(self, records: list[tuple[Record, asyncio.Future[None] | None]]) -> None:
        try:
            await self._insert([record for record, _ in records])
        except Exception:
            if len(records) > 1:
                # One bad row (say, of an organization deleted a moment ago) must not cost the whole batch:
                # write the rows one by one and give up only on those that fail.
                for each in records:
                    await self._write([each])
                return
            # The history is best effort (the broker already delivered the message); a failing database
            # must not stop the writer, so the row is counted and given up.
            self.failed += 1
            episodes(
                logger,
                logging.WARNING,
                "history",
                "could not write a history message of %s",
                records[0][0].organization_id,
                exc_info=True,
            )
            _settle(records[0][1], "the database did not take it")
        else:
            self.recorded += len(records)
            for _, done in records:
                _settle(done, None)

    async def _insert(self, records: list[Record]) -> None:
        async with self._database.session() as session:
            session.add_all(
                HistoryMessage(
                    id=record.id,
                    organization_id=record.organization_id,
                    topic=record.topic,
                    payload=record.payload,
                    qos=record.qos,
                    retain=record.retain,
                    received_at=record.received_at,
                )
                for record in records
            )


def _settle(done: asyncio.Future[None] | None, failure: str | None) -> None:
    """Tell whoever waits on a stored record whether its row was committed (``failure`` says why not)."""
    if done is None or done.done():
        return
    if failure is None:
        done.set_result(None)
    else:
        done.set_exception(UnavailableError(f"history message not written: {failure}"))
