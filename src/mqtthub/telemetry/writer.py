"""The ingest writer: a bounded queue drained in batches, one transaction per batch (group commit).

Every submitted item gets a future that resolves to an MQTT 5.0 reason code only after
the transaction holding it has committed. The broker holds a QoS 1/2 PUBACK until then,
so an acknowledged message is on disk; with SQLite in WAL mode a committed transaction
survives ``kill -9`` of the process even with ``synchronous=NORMAL`` (only a power loss
can take back the last commits, which is the trade-off the hub makes for throughput).

Queue-full policy, by name:

* ``PAUSE_PUBLISHER`` (items whose sender waits: QoS 1/2 messages, HTTP requests): the
  item is parked and its future stays pending until there is room. The broker counts
  pending futures per connection and stops reading that client's socket at its receive
  maximum, so a fast publisher is slowed down rather than buffered without limit.
* ``DROP_NEWEST`` (items nobody waits for: QoS 0 messages): the item is dropped and
  counted in :attr:`IngestWriter.dropped`; QoS 0 is at-most-once by definition.

What a failed write means is decided by :func:`mqtthub.db.faults.classify`, from the error's
kind (SQLSTATE class, SQLite result code), never from its text:

* **The database's fault** (connection lost, server shutting down, read-only, disk full, lock
  timeout, ...): the batch is kept and written again, in order, with capped exponential
  back-off until the database takes it. Nothing behind it is written meanwhile, so the queue
  fills and publishers pause exactly as when the database is merely slow. The episode is
  logged once when it starts and once when it ends (with counts) and is visible as
  :attr:`IngestWriter.outage` (``/health``). When the queue is full and the outage has lasted
  ``hold_timeout`` seconds, parked items fail with :class:`~mqtthub.errors.UnavailableError`
  (their publishers are disconnected, never acknowledged); queued items stay and are written
  once the database is back.
* **The rows' own fault** (a constraint or value the database refuses): a batch is split and
  written item by item, each item under the same rules, so one bad item cannot take others
  down with it and a database fault met on the way is still waited out. A single refused item
  is handed to :meth:`BatchStore.refuse` and written once more, as a refusal.

When the writer closes while the database is down, it keeps trying for ``close_timeout``
seconds, then cancels what it could not write (an unresolved future is never acknowledged).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Generic, Protocol, Self, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from mqtthub.db import Database
from mqtthub.db.faults import FaultKind, WriteFault, classify
from mqtthub.errors import StateError, UnavailableError
from mqtthub.mqtt.reason_codes import ReasonCode
from mqtthub.observability.histogram import SECONDS_BUCKETS, Histogram

logger = logging.getLogger(__name__)

BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
"""Buckets of :attr:`IngestWriter.batch_sizes`."""

T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)


class QueueFullPolicy(enum.StrEnum):
    """What :meth:`IngestWriter.submit` does when the queue is full; see the module docstring."""

    PAUSE_PUBLISHER = "pause_publisher"
    DROP_NEWEST = "drop_newest"


class BatchStore(Protocol[T_contra]):
    """Writes one batch inside the writer's transaction; returns one reason code per item."""

    async def write(self, session: AsyncSession, items: Sequence[T_contra]) -> list[int]:
        """Add the batch's rows to ``session`` (flush only, the writer commits)."""
        ...

    def refuse(self, item: T_contra, reason: str) -> None:
        """Mark an item the database refused, so that writing it again records the refusal instead."""
        ...


class WriterState(enum.Enum):
    """Life cycle of an :class:`IngestWriter`."""

    CREATED = "created"
    RUNNING = "running"
    CLOSING = "closing"
    CLOSED = "closed"


@dataclass(slots=True)
class _Pending(Generic[T]):
    item: T
    future: asyncio.Future[int]
    awaited: bool


@dataclass(slots=True)
class Outage:
    """An episode of failing writes, from the first failure to the next commit.

    Attributes:
        fault: The latest classified error.
        started: Unix time of the first failure.
        since: Monotonic time of the first failure.
        attempts: Failed attempts so far.
        released: Parked items failed after ``hold_timeout`` (their publishers were disconnected).
    """

    fault: WriteFault
    started: float
    since: float
    attempts: int = 1
    released: int = 0


class _Abandoned(Exception):
    """The writer is closing and the database stayed down: stop without resolving the futures."""


class IngestWriter(Generic[T]):
    """Group-commit writer; an async context manager that drains its queue when it closes.

    Args:
        database: Where batches are written.
        store: Turns a batch into rows.
        capacity: Items queued before the queue-full policy applies.
        max_batch: Most items per transaction.
        max_delay: Seconds to wait for a batch to fill once the first item is there.
        retry_delay: First back-off after a database fault; doubled per attempt up to ``max_retry_delay``.
        max_retry_delay: Longest back-off between attempts.
        hold_timeout: Seconds of outage after which items that cannot be queued fail (see the module docstring).
        close_timeout: Seconds a closing writer keeps retrying a database that is down.
        unawaited_delay: Seconds a batch may keep filling while none of its items has a sender waiting for it
            (submitted with ``awaited=False``: the hub's own records, such as devices connecting); the batch
            goes at once when an awaited item joins it. A fleet reconnecting then writes a few large batches
            instead of many small ones.
        on_committed: Called with each committed batch and its codes (after the futures are resolved).
    """

    def __init__(
        self,
        database: Database,
        store: BatchStore[T],
        *,
        capacity: int = 10_000,
        max_batch: int = 1000,
        max_delay: float = 0.002,
        retry_delay: float = 0.05,
        max_retry_delay: float = 2.0,
        hold_timeout: float = 30.0,
        close_timeout: float = 5.0,
        unawaited_delay: float = 0.0,
        on_committed: Callable[[Sequence[T], Sequence[int]], None] | None = None,
    ) -> None:
        if capacity < 1 or max_batch < 1:
            raise ValueError("capacity and max_batch must be at least 1")
        self._database = database
        self._store = store
        self.capacity = capacity
        self.max_batch = max_batch
        self.max_delay = max_delay
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.hold_timeout = hold_timeout
        self.close_timeout = close_timeout
        self.unawaited_delay = unawaited_delay
        self._on_committed = on_committed
        self._queue: deque[_Pending[T]] = deque()
        self._parked: deque[_Pending[T]] = deque()
        self._wakeup = asyncio.Event()
        self._urgent = asyncio.Event()
        """Set when the batch filling for ``unawaited_delay`` must go now (an awaited item, a full batch, closing)."""
        self._task: asyncio.Task[None] | None = None
        self._connection: AsyncConnection | None = None
        self.state = WriterState.CREATED
        self.written = 0
        self.batches = 0
        self.dropped = 0
        self.failed = 0
        self.parked_total = 0
        self.database_errors = 0
        """Transactions that failed (each retry and each batch split counts)."""
        self.batch_sizes = Histogram(BATCH_SIZE_BUCKETS)
        """Items per committed transaction."""
        self.commit_seconds = Histogram(SECONDS_BUCKETS)
        """Time to write and commit each committed transaction."""
        self.refused = 0
        self.released = 0
        self.outages = 0
        self.outage: Outage | None = None
        """The current episode of failing writes, or None while writes succeed."""
        self._closing_since = 0.0
        self._writing = 0
        self._awaited = 0
        """Queued and parked items submitted with ``awaited=True``."""

    @property
    def queued(self) -> int:
        """Items waiting (queued and parked)."""
        return len(self._queue) + len(self._parked)

    @property
    def held(self) -> int:
        """Items not written yet: the batch being written, queued and parked."""
        return self._writing + self.queued

    async def __aenter__(self) -> Self:
        if self.state is not WriterState.CREATED:
            raise StateError(f"an ingest writer can be started only once (it is {self.state.value})")
        self._task = asyncio.create_task(self._run(), name="telemetry-ingest-writer")
        self.state = WriterState.RUNNING
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Write what is queued, then stop. Items submitted afterwards are refused."""
        if self.state in (WriterState.CLOSING, WriterState.CLOSED):
            return
        self.state = WriterState.CLOSING
        self._closing_since = time.monotonic()
        self._wakeup.set()
        self._urgent.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for pending in (*self._queue, *self._parked):
            pending.future.cancel()
        self._queue.clear()
        self._parked.clear()
        self._awaited = 0
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()
            self._connection = None
        self.state = WriterState.CLOSED

    def submit(
        self, item: T, *, policy: QueueFullPolicy = QueueFullPolicy.PAUSE_PUBLISHER, awaited: bool = True
    ) -> asyncio.Future[int]:
        """Queue an item; the future resolves to its reason code once its batch has committed.

        ``awaited=False`` says that no sender waits for the item (see ``unawaited_delay``).

        With ``DROP_NEWEST`` and a full queue the item is dropped and the returned future is
        already resolved to ``QUOTA_EXCEEDED`` (0x97). With ``PAUSE_PUBLISHER``, a full queue and
        an outage older than ``hold_timeout`` the future already holds an :class:`UnavailableError`.

        Raises:
            StateError: the writer is not running.
        """
        if self.state is not WriterState.RUNNING:
            raise StateError(f"the ingest writer is not running (it is {self.state.value})")
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        pending = _Pending(item, future, awaited)
        if len(self._queue) < self.capacity and not self._parked:
            self._queue.append(pending)
            self._awaited += awaited
            self._wakeup.set()
            if awaited or len(self._queue) >= self.max_batch:
                self._urgent.set()
        elif policy is QueueFullPolicy.DROP_NEWEST:
            self.dropped += 1
            future.set_result(ReasonCode.QUOTA_EXCEEDED)
        elif self._holding_expired():
            self._release(pending)
        else:
            self.parked_total += 1
            self._parked.append(pending)
            self._awaited += awaited
            self._urgent.set()
        return future

    async def _fill(self) -> None:
        """Let the batch fill: ``max_delay``, then up to ``unawaited_delay`` while nobody waits for its items."""
        if self.max_delay <= 0 or len(self._queue) >= self.max_batch or self.state is not WriterState.RUNNING:
            return
        await asyncio.sleep(self.max_delay)
        longer = self.unawaited_delay - self.max_delay
        if longer <= 0 or self._awaited or len(self._queue) >= self.max_batch or self.state is not WriterState.RUNNING:
            return
        self._urgent.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._urgent.wait(), longer)

    async def _run(self) -> None:
        while True:
            if not self._queue:
                if self.state is not WriterState.RUNNING:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self._fill()
            count = min(self.max_batch, len(self._queue))
            batch = [self._queue.popleft() for _ in range(count)]
            self._awaited -= sum(pending.awaited for pending in batch)
            while self._parked and len(self._queue) < self.capacity:
                self._queue.append(self._parked.popleft())
            self._writing = len(batch)
            try:
                codes = await self._write_batch(batch)
            except _Abandoned:
                for pending in (*batch, *self._queue, *self._parked):
                    pending.future.cancel()
                self._queue.clear()
                self._parked.clear()
                self._awaited = 0
                return
            self._writing = 0
            self._finish(batch, codes)

    def _finish(self, batch: list[_Pending[T]], codes: Sequence[int]) -> None:
        for pending, code in zip(batch, codes, strict=True):
            if not pending.future.done():
                pending.future.set_result(code)
        self.written += len(batch)
        self.batches += 1
        if self._on_committed is not None:
            try:
                self._on_committed([pending.item for pending in batch], codes)
            except Exception:
                logger.exception("ingest after-commit hook failed")

    async def _write_batch(self, batch: list[_Pending[T]]) -> list[int]:
        items = [pending.item for pending in batch]
        outcome = await self._write(items)
        if not isinstance(outcome, WriteFault):
            return outcome
        if len(items) > 1:
            logger.warning("ingest batch of %d refused (%s); writing its items one by one", len(items), outcome.reason)
            codes: list[int] = []
            for pending in batch:
                codes.extend(await self._write_batch([pending]))
            return codes
        self._store.refuse(items[0], outcome.reason)
        again = await self._write(items)
        if isinstance(again, WriteFault):
            logger.error("an ingest item refused by the database (%s) could not be recorded as refused", again.reason)
            self.failed += 1
            return [ReasonCode.PAYLOAD_FORMAT_INVALID]
        self.refused += 1
        return again

    async def _write(self, items: list[T]) -> list[int] | WriteFault:
        """Commit ``items``, waiting out database faults; the fault when the database refuses the items."""
        while True:
            try:
                codes = await self._transaction(items)
            except Exception as exc:
                self.database_errors += 1
                fault = classify(exc)
                if fault.kind is FaultKind.DATA:
                    logger.debug("ingest write refused: %s", fault.reason, exc_info=True)
                    return fault
                self._failing(fault, exc)
                if (
                    self.state is not WriterState.RUNNING
                    and time.monotonic() - self._closing_since > self.close_timeout
                ):
                    logger.error(
                        "database still unavailable (%s) while closing; %d items not written", fault.reason, self.held
                    )
                    raise _Abandoned from exc
                await self._back_off()
                continue
            self._recovered()
            return codes

    def _failing(self, fault: WriteFault, exc: BaseException) -> None:
        outage = self.outage
        if outage is None:
            self.outages += 1
            self.outage = Outage(fault, time.time(), time.monotonic())
            logger.warning(
                "database writes failing (%s%s); holding %d items and retrying: %s",
                fault.reason,
                f", {fault.code}" if fault.code else "",
                self.held,
                exc.__class__.__name__,
            )
            return
        outage.attempts += 1
        outage.fault = fault

    def _recovered(self) -> None:
        outage = self.outage
        if outage is None:
            return
        self.outage = None
        logger.warning(
            "database writes recovered after %.1f s (%d failed attempts, last: %s); %d items still queued, "
            "%d items released after the hold timeout",
            time.monotonic() - outage.since,
            outage.attempts,
            outage.fault.reason,
            self.queued,
            outage.released,
        )

    async def _back_off(self) -> None:
        outage = self.outage
        assert outage is not None
        delay = min(self.retry_delay * 2 ** min(outage.attempts - 1, 16), self.max_retry_delay)
        if self._parked:
            # Wake up in time to release parked items when the hold timeout passes.
            delay = max(0.0, min(delay, outage.since + self.hold_timeout - time.monotonic()))
        await asyncio.sleep(delay)
        if self._holding_expired():
            while self._parked:
                pending = self._parked.popleft()
                self._awaited -= pending.awaited
                self._release(pending)

    def _holding_expired(self) -> bool:
        outage = self.outage
        return outage is not None and time.monotonic() - outage.since >= self.hold_timeout

    def _release(self, pending: _Pending[T]) -> None:
        """Fail an item that cannot be queued while the database stays down: its sender is not acknowledged."""
        outage = self.outage
        assert outage is not None
        outage.released += 1
        self.released += 1
        if not pending.future.done():
            pending.future.set_exception(
                UnavailableError(
                    f"the database has been unavailable for {self.hold_timeout:g} s ({outage.fault.reason})"
                )
            )
            # Marked as retrieved: items the hub records about itself (connects, deliveries) have nobody awaiting.
            pending.future.exception()

    async def _transaction(self, items: list[T]) -> list[int]:
        # One connection held for the writer's life: no pool check-out and liveness ping per batch (each is a
        # round trip through the driver's thread or socket). It is dropped after any error and opened again.
        started = time.perf_counter()
        if self._connection is None:
            self._connection = await self._database.engine.connect()
        connection = self._connection
        try:
            async with connection.begin(), AsyncSession(bind=connection, expire_on_commit=False) as session:
                codes = await self._store.write(session, items)
                await session.flush()
        except BaseException:
            self._connection = None
            with contextlib.suppress(Exception):
                await connection.close()
            raise
        elapsed = time.perf_counter() - started
        self.batch_sizes.observe(len(items))
        self.commit_seconds.observe(elapsed)
        logger.debug("committed %d items in %.1f ms", len(items), elapsed * 1000)
        return codes
