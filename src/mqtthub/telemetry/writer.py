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

Writes that fail because the database is unreachable are retried with back-off (the queue
fills and publishers pause meanwhile); a batch that fails for any other reason is split
and written item by item, so one bad item cannot take others down with it.
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

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from mqtthub.db import Database
from mqtthub.errors import StateError
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


class IngestWriter(Generic[T]):
    """Group-commit writer; an async context manager that drains its queue when it closes.

    Args:
        database: Where batches are written.
        store: Turns a batch into rows.
        capacity: Items queued before the queue-full policy applies.
        max_batch: Most items per transaction.
        max_delay: Seconds to wait for a batch to fill once the first item is there.
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
        self._on_committed = on_committed
        self._queue: deque[_Pending[T]] = deque()
        self._parked: deque[_Pending[T]] = deque()
        self._wakeup = asyncio.Event()
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

    @property
    def queued(self) -> int:
        """Items waiting (queued and parked)."""
        return len(self._queue) + len(self._parked)

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
        self._wakeup.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for pending in (*self._queue, *self._parked):
            pending.future.cancel()
        self._queue.clear()
        self._parked.clear()
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()
            self._connection = None
        self.state = WriterState.CLOSED

    def submit(self, item: T, *, policy: QueueFullPolicy = QueueFullPolicy.PAUSE_PUBLISHER) -> asyncio.Future[int]:
        """Queue an item; the future resolves to its reason code once its batch has committed.

        With ``DROP_NEWEST`` and a full queue the item is dropped and the returned future is
        already resolved to ``QUOTA_EXCEEDED`` (0x97).

        Raises:
            StateError: the writer is not running.
        """
        if self.state is not WriterState.RUNNING:
            raise StateError(f"the ingest writer is not running (it is {self.state.value})")
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        pending = _Pending(item, future)
        if len(self._queue) < self.capacity and not self._parked:
            self._queue.append(pending)
            self._wakeup.set()
        elif policy is QueueFullPolicy.DROP_NEWEST:
            self.dropped += 1
            future.set_result(ReasonCode.QUOTA_EXCEEDED)
        else:
            self.parked_total += 1
            self._parked.append(pending)
        return future

    async def _run(self) -> None:
        while True:
            if not self._queue:
                if self.state is not WriterState.RUNNING:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if self.max_delay > 0 and len(self._queue) < self.max_batch and self.state is WriterState.RUNNING:
                await asyncio.sleep(self.max_delay)
            count = min(self.max_batch, len(self._queue))
            batch = [self._queue.popleft() for _ in range(count)]
            while self._parked and len(self._queue) < self.capacity:
                self._queue.append(self._parked.popleft())
            codes = await self._write_batch(batch)
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
        attempt = 0
        items = [pending.item for pending in batch]
        error: BaseException | None = None
        while True:
            try:
                return await self._transaction(items)
            except (OperationalError, InterfaceError, OSError) as exc:
                self.database_errors += 1
                if isinstance(exc, DBAPIError) and not _transient(exc):
                    error = exc
                    break
                attempt += 1
                if self.state is not WriterState.RUNNING and attempt > 3:
                    logger.error("database unavailable while closing; %d items not written", len(items))
                    self.failed += len(items)
                    return [ReasonCode.UNSPECIFIED_ERROR] * len(items)
                delay = min(self.retry_delay * 2 ** min(attempt, 6), 2.0)
                logger.warning("ingest batch failed (%s); retrying in %.2fs", exc.__class__.__name__, delay)
                await asyncio.sleep(delay)
            except Exception as exc:
                self.database_errors += 1
                error = exc
                break
        if len(items) == 1:
            logger.error("ingest item could not be written", exc_info=error)
            self.failed += 1
            return [ReasonCode.UNSPECIFIED_ERROR]
        logger.warning("ingest batch of %d failed; writing its items one by one", len(items))
        codes: list[int] = []
        for pending in batch:
            codes.extend(await self._write_batch([pending]))
        return codes

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


def _transient(exc: DBAPIError) -> bool:
    """Whether a driver error means "try again" (connection lost, database locked) rather than bad data."""
    if exc.connection_invalidated:
        return True
    text = str(exc.orig).lower()
    return any(word in text for word in ("locked", "busy", "connection", "closed", "timeout", "terminat"))
