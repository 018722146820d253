"""The history writer: messages offered on the broker's routing path, written to the database in batches.

``offer`` never blocks: it appends to a bounded queue whose overflow policy is **drop
oldest** (counted in ``dropped``), so a database slower than the message rate loses the
oldest unwritten history instead of stalling the broker. :meth:`HistoryRecorder.run` is
the writer loop; :meth:`HistoryRecorder.flushed` lets a reader wait until everything
offered before it has been written, so ``GET /messages`` right after a publish sees it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from datetime import datetime

from mqtthub.broker.episodes import EpisodeLog
from mqtthub.db import Database
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


class HistoryRecorder:
    """A bounded queue of records and the loop that writes them."""

    def __init__(self, database: Database, *, max_queued: int = 10_000, batch_size: int = 500) -> None:
        self._database = database
        self._queue: deque[tuple[int, Record]] = deque()
        self._max_queued = max_queued
        self._batch_size = batch_size
        self._offered = 0
        self._written = 0
        self._wake = asyncio.Event()
        self._progress = asyncio.Condition()
        self.recorded = 0
        self.dropped = 0
        self.failed = 0

    def offer(self, record: Record) -> None:
        """Queue a record for writing; drops the oldest queued record when full."""
        if len(self._queue) >= self._max_queued:
            self._queue.popleft()
            self.dropped += 1
        self._offered += 1
        self._queue.append((self._offered, record))
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
            await self._write([record for _, record in batch])
            async with self._progress:
                self._written = batch[-1][0]
                self._progress.notify_all()

    async def _write(self, records: list[Record]) -> None:
        try:
            await self._insert(records)
        except Exception:
            if len(records) > 1:
                # One bad row (say, of an organization deleted a moment ago) must not cost the whole batch:
                # write the rows one by one and give up only on those that fail.
                for record in records:
                    await self._write([record])
                return
            # The history is best effort (the broker already delivered the message); a failing database
            # must not stop the writer, so the row is counted and given up.
            self.failed += 1
            episodes(
                logger,
                logging.WARNING,
                "history",
                "could not write a history message of %s",
                records[0].organization_id,
                exc_info=True,
            )
        else:
            self.recorded += len(records)

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
