"""Broker state that outlives the process: the records, the :class:`StateStore` interface, the journal.

What is kept: retained messages, and every session with a non-zero expiry interval (its
subscriptions with all their options, its expiry, the QoS 2 packet ids it received and not
yet released, a will waiting for its delay interval, and each QoS 1/2 message it holds,
queued or in flight with its packet id) [MQTT-4.1.0-1].

The broker records changes in a :class:`StateJournal` as they happen (a dict assignment on
the event loop, nothing else) and the journal writes them to a :class:`StateStore` in
batches, one write at a time: changes that cancel out before they are written (a message
held and acknowledged within one batch) never reach the store. In ``sync`` mode a batch is
written as soon as the previous one finished, and :meth:`StateJournal.barrier` lets the
broker hold a PUBACK until the state it caused is stored; in ``periodic`` mode batches are
written every ``interval`` seconds and nothing waits.

Stores live outside the broker (the broker knows no database); :class:`InMemoryStateStore`
is the reference implementation the contract tests hold every other store to.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from mqtthub.broker.hooks import BrokerMessage, Principal
from mqtthub.mqtt.packets import Will

if TYPE_CHECKING:
    from mqtthub.broker.session import Outgoing, Session, SessionKey

logger = logging.getLogger(__name__)

PersistenceMode = Literal["periodic", "sync"]


@dataclass(frozen=True, slots=True)
class SubscriptionRecord:
    """One subscription of a stored session, with its options [MQTT-3.8.3.1]; ``topic_filter`` is internal."""

    topic_filter: str
    qos: int
    no_local: bool = False
    retain_as_published: bool = False
    retain_handling: int = 0
    identifier: int | None = None
    share_group: str | None = None


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A stored session without its messages (those are :class:`HeldRecord` rows of their own)."""

    mountpoint: str
    client_id: str
    principal: Principal
    """The identity that owns the session; restored with it."""
    expiry_interval: int
    disconnected_at: float | None
    """Unix time the last connection ended; ``None`` while connected (counted from the restart then)."""
    subscriptions: tuple[SubscriptionRecord, ...] = ()
    inbound_qos2: tuple[int, ...] = ()
    """Packet ids of QoS 2 messages received and not yet released by PUBREL [MQTT-4.3.3-10]."""
    will: Will | None = None
    will_at: float | None = None
    """Unix time the delayed will is due [MQTT-3.1.3-9]."""

    @property
    def key(self) -> SessionKey:
        """(mountpoint, client id)."""
        return (self.mountpoint, self.client_id)


@dataclass(frozen=True, slots=True)
class HeldRecord:
    """One QoS 1/2 message a stored session holds: queued (``packet_id`` 0) or in flight."""

    store_id: int
    """Unique per store and increasing in the order messages were first held."""
    session_key: SessionKey
    message: BrokerMessage
    qos: int
    retain: bool
    identifiers: tuple[int, ...] = ()
    share_group: str | None = None
    share_filter: str | None = None
    packet_id: int = 0
    released: bool = False


@dataclass(slots=True)
class StateBatch:
    """Changes written together, atomically, in this order: discarded sessions (with everything they
    held), session records, held messages, retained messages. ``None`` deletes."""

    discarded: set[SessionKey] = field(default_factory=set)
    sessions: list[SessionRecord] = field(default_factory=list)
    held: dict[int, HeldRecord | None] = field(default_factory=dict)
    retained: dict[str, BrokerMessage | None] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.discarded or self.sessions or self.held or self.retained)

    def merge(self, newer: StateBatch) -> StateBatch:
        """One batch with the effect of writing this one, then ``newer``."""
        gone = newer.discarded
        sessions = {r.key: r for r in self.sessions if r.key not in gone}
        sessions.update((r.key, r) for r in newer.sessions)
        held = {i: h for i, h in self.held.items() if h is None or h.session_key not in gone}
        held.update(newer.held)
        return StateBatch(self.discarded | gone, list(sessions.values()), held, self.retained | newer.retained)


@dataclass(slots=True)
class StoredState:
    """Everything a store holds, as read back on start. ``held`` is ordered by ``store_id``."""

    retained: list[BrokerMessage] = field(default_factory=list)
    sessions: list[SessionRecord] = field(default_factory=list)
    held: list[HeldRecord] = field(default_factory=list)


class StateStore(Protocol):
    """Where broker state is kept between runs.

    ``write`` applies a whole batch or nothing and returns once it is durable; ``read`` returns
    what the writes left. Both may run blocking I/O off the event loop; neither is called
    while the other runs.
    """

    async def read(self) -> StoredState:
        """Everything stored."""
        ...

    async def write(self, batch: StateBatch) -> None:
        """Apply ``batch`` atomically (see :class:`StateBatch` for the order)."""
        ...

    async def close(self) -> None:
        """Release files and threads."""
        ...


class InMemoryStateStore:
    """Keeps the records in dicts: survives a broker, not the process (tests, and the contract's reference)."""

    def __init__(self) -> None:
        self._sessions: dict[SessionKey, SessionRecord] = {}
        self._held: dict[int, HeldRecord] = {}
        self._retained: dict[str, BrokerMessage] = {}

    async def read(self) -> StoredState:
        """See :meth:`StateStore.read`."""
        return StoredState(
            list(self._retained.values()),
            list(self._sessions.values()),
            [self._held[store_id] for store_id in sorted(self._held)],
        )

    async def write(self, batch: StateBatch) -> None:
        """See :meth:`StateStore.write`."""
        for key in batch.discarded:
            self._sessions.pop(key, None)
            for store_id in [i for i, held in self._held.items() if held.session_key == key]:
                del self._held[store_id]
        for record in batch.sessions:
            self._sessions[record.key] = record
        for store_id, held in batch.held.items():
            if held is None:
                self._held.pop(store_id, None)
            else:
                self._held[store_id] = held
        for topic, message in batch.retained.items():
            if message is None:
                self._retained.pop(topic, None)
            else:
                self._retained[topic] = message

    async def close(self) -> None:
        """Nothing to release."""


class StateJournal:
    """Records broker state changes and writes them to a :class:`StateStore` (see the module docstring).

    Args:
        store: Where the state goes.
        mode: ``sync`` (write at once, :meth:`barrier` available) or ``periodic`` (every ``interval``).
        interval: Seconds between writes in ``periodic`` mode.
        retry_delay: Seconds before a failed write is tried again (with every change made since).
    """

    def __init__(
        self, store: StateStore, *, mode: PersistenceMode = "sync", interval: float = 1.0, retry_delay: float = 1.0
    ) -> None:
        self.store = store
        self.mode = mode
        self.interval = interval
        self.retry_delay = retry_delay
        self.batches_written = 0
        self.write_failures = 0
        self.last_error: str | None = None
        """The error of the last failed write while writes fail; ``None`` once one succeeds."""
        self._sync = mode == "sync"
        self._discarded: set[SessionKey] = set()
        self._sessions: dict[SessionKey, Session] = {}
        self._held: dict[int, tuple[Session, Outgoing] | None] = {}
        self._unwritten: set[int] = set()
        """Held ids never handed to the store: dropping them needs no delete."""
        self._retained: dict[str, BrokerMessage | None] = {}
        self._waiters: list[asyncio.Future[None]] = []
        self._wake = asyncio.Event()
        self._next_id = 1
        self._failing = False
        self._writing: asyncio.Task[bool] | None = None
        self._writing_waiters: list[asyncio.Future[None]] | None = None
        """Waiters of the batch being written."""
        self._retry: StateBatch | None = None
        """A batch whose write failed, tried again under the changes recorded since."""

    # -- recording (event loop, hot path) -------------------------------------------------------------

    def start_ids_after(self, store_id: int) -> None:
        """Continue numbering held messages after the highest id read back from the store."""
        self._next_id = max(self._next_id, store_id + 1)

    def held(self, session: Session, out: Outgoing) -> None:
        """``session`` holds ``out`` (queued, or in flight with its packet id and QoS 2 state)."""
        store_id = out.store_id
        if not store_id:
            store_id = out.store_id = self._next_id
            self._next_id += 1
            self._unwritten.add(store_id)
        self._held[store_id] = (session, out)
        self._wake.set()

    def dropped(self, out: Outgoing) -> None:
        """The session holding ``out`` no longer does (acknowledged, expired, dropped or handed over)."""
        store_id = out.store_id
        if not store_id:
            return
        if store_id in self._unwritten:
            self._unwritten.discard(store_id)
            self._held.pop(store_id, None)
            out.store_id = 0
            return
        self._held[store_id] = None
        self._wake.set()

    def session_changed(self, session: Session) -> None:
        """Anything but the held messages changed; the record is taken when the batch is written."""
        self._sessions[session.key] = session
        self._wake.set()

    def session_discarded(self, session: Session) -> None:
        """The session ended: it goes from the store with every message it held."""
        key = session.key
        self._sessions.pop(key, None)
        self._discarded.add(key)
        for store_id, entry in list(self._held.items()):
            if entry is not None and entry[0] is session:
                del self._held[store_id]
        self._wake.set()

    def retained_changed(self, message: BrokerMessage) -> None:
        """A retained message was set, or cleared by an empty payload [MQTT-3.3.1-10]."""
        self._retained[message.topic] = message if message.payload else None
        self._wake.set()

    def barrier(self) -> asyncio.Future[None] | None:
        """In ``sync`` mode with changes not yet stored: a future done once they are; else ``None``.

        While a batch is being written, the future waits for it too, so acknowledgements leave in the
        order their packets came even when only the earlier one changed stored state [MQTT-4.6.0-2].
        """
        if not self._sync:
            return None
        if self._held or self._sessions or self._discarded or self._retained:
            waiters = self._waiters
        elif self._writing_waiters is not None:
            waiters = self._writing_waiters
        else:
            return None
        waiter = asyncio.get_running_loop().create_future()
        waiters.append(waiter)
        return waiter

    # -- writing --------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Write batches until cancelled (one at a time: the next collects while one is written)."""
        while True:
            await self._wake.wait()
            if not self._sync:
                await asyncio.sleep(self.interval)
            self._wake.clear()
            # A write is not cut short by cancellation: what it carries is stored or kept for a retry,
            # and :meth:`close` waits for it.
            self._writing = asyncio.create_task(self.flush(), name="mqtt-state-write")
            try:
                await asyncio.shield(self._writing)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("broker state batch could not be prepared; its changes are lost")

    async def close(self, attempts: int = 3) -> None:
        """After :meth:`run` was cancelled: wait for the write under way, then write what is left."""
        if self._writing is not None:
            await asyncio.wait([self._writing])
        for _ in range(attempts):
            if await self.flush():
                return
        logger.error("broker state changes since the last successful write are lost")
        _resolve(self._waiters)

    async def flush(self) -> bool:
        """Write everything recorded so far; False if the store failed (the changes are kept for a retry)."""
        batch = self._take()
        if self._retry is not None:
            batch, self._retry = self._retry.merge(batch), None
        waiters, self._waiters = self._waiters, []
        if not batch:
            _resolve(waiters)
            return True
        self._writing_waiters = waiters
        try:
            await self.store.write(batch)
        except Exception as exc:
            self._writing_waiters = None
            self.write_failures += 1
            self.last_error = repr(exc)
            if not self._failing:
                logger.error("broker state could not be written (%r); retrying every %.1fs", exc, self.retry_delay)
            self._failing = True
            self._retry = batch
            self._waiters[:0] = waiters
            self._wake.set()
            await asyncio.sleep(self.retry_delay)
            return False
        if self._failing:
            logger.warning("broker state written again after %d failed attempts", self.write_failures)
            self._failing = False
        self.last_error = None
        self._writing_waiters = None
        self.batches_written += 1
        _resolve(waiters)
        return True

    def _take(self) -> StateBatch:
        batch = StateBatch(discarded=self._discarded, retained=self._retained)
        batch.sessions = [session_record(session) for session in self._sessions.values()]
        held = batch.held
        for store_id, entry in self._held.items():
            held[store_id] = None if entry is None else held_record(store_id, *entry)
        self._discarded = set()
        self._sessions = {}
        self._held = {}
        self._retained = {}
        self._unwritten.clear()
        return batch


def session_record(session: Session) -> SessionRecord:
    """What of ``session`` is stored, besides its messages."""
    return SessionRecord(
        mountpoint=session.mountpoint,
        client_id=session.client_id,
        principal=session.principal,
        expiry_interval=session.expiry_interval,
        disconnected_at=session.disconnected_at,
        subscriptions=tuple(
            SubscriptionRecord(
                sub.topic_filter,
                sub.qos,
                sub.no_local,
                sub.retain_as_published,
                sub.retain_handling,
                sub.identifier,
                sub.share_group,
            )
            for sub in session.subscriptions.values()
        ),
        inbound_qos2=tuple(sorted(session.inbound_qos2)),
        will=session.will,
        will_at=session.will_at,
    )


def held_record(store_id: int, session: Session, out: Outgoing) -> HeldRecord:
    """``out`` as ``session`` holds it now."""
    group = out.group
    return HeldRecord(
        store_id=store_id,
        session_key=session.key,
        message=out.message,
        qos=out.qos,
        retain=out.retain,
        identifiers=out.identifiers,
        share_group=None if group is None else group.name,
        share_filter=None if group is None else group.topic_filter,
        packet_id=out.packet_id,
        released=out.released,
    )


def _resolve(waiters: list[asyncio.Future[None]]) -> None:
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(None)
