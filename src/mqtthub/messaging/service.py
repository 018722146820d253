"""The messaging service: what the REST and WebSocket endpoints do, and the loops behind them.

It owns, for every organization, the desired set of recorded topic filters (kept in the
database, re-established with the broker at start-up). Recorded filters and the ``/ws``
clients' own filters share the broker subscriptions of :mod:`.taps`, which hand each message
over once; a message of a recorded filter goes to the history writer, and every message to
the live fan-out of ``/ws`` clients (:mod:`.live`). A filter added or removed through the API is
recorded as a :class:`FilterRecorded` or :class:`FilterDropped` on the request's session and
reaches the broker right after the commit (:mod:`mqtthub.db.changes`), so a request that
fails leaves the broker subscriptions as they were; a deleted organization's filters go the
same way. Background loops (history writer, pruner) run in the service's
:class:`~mqtthub.background.BackgroundTasks`, cancelled and awaited on exit.

With an external broker that shares durable queues among hubs (:mod:`.shared`), the history is written from
those queues instead, once across the hubs; the taps then feed only this hub's ``/ws`` clients. Each hub reads the
recorded filters from the database every ``sync_interval`` seconds, so filters recorded or dropped through another
hub are followed (and bound, or unbound, again: a hub that died right after its commit may not have).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mqtthub.auth.live import OrganizationDeleted
from mqtthub.background import BackgroundTasks, ServiceState
from mqtthub.broker.handle import BrokerHandle
from mqtthub.broker.hooks import BrokerMessage
from mqtthub.config import Settings
from mqtthub.db import Database
from mqtthub.db.base import utcnow
from mqtthub.db.changes import record
from mqtthub.errors import MQTTHubError, NotFoundError, StateError, UnavailableError
from mqtthub.messaging import history
from mqtthub.messaging.live import LiveMessage, LiveMessages, live_message_text
from mqtthub.messaging.namespace import OrgScope
from mqtthub.messaging.ratelimit import TokenBucketLimiter
from mqtthub.messaging.recorder import HistoryRecorder, Record
from mqtthub.messaging.schemas import MessagingHealth
from mqtthub.messaging.shared import RecordedSink, SharedRecording
from mqtthub.messaging.taps import BrokerTaps
from mqtthub.models import MessageSubscription, Organization
from mqtthub.models.messaging import MAX_RECORDED_TOPIC_LENGTH
from mqtthub.mqtt.topics import topic_matches
from mqtthub.tenancy import namespace_prefix

logger = logging.getLogger(__name__)

C = TypeVar("C")


@dataclass(frozen=True, slots=True)
class FilterRecorded:
    """An organization records a topic filter from now on (or records it with another QoS)."""

    scope: OrgScope
    topic_filter: str
    qos: int


@dataclass(frozen=True, slots=True)
class FilterDropped:
    """An organization stopped recording a topic filter."""

    organization_id: str
    topic_filter: str


class MessagingService:
    """Publishing, recorded subscriptions, history and live feed; an async context manager."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        broker: BrokerHandle,
        *,
        prune_interval: float = 30.0,
        started_at: float | None = None,
        shared: SharedRecording | None = None,
        sync_interval: float = 2.0,
    ) -> None:
        self.settings = settings
        self.database = database
        self._broker = broker
        self._prune_interval = prune_interval
        self.started_at = time.time() if started_at is None else started_at
        self.recorder = HistoryRecorder(database)
        self.limiter = TokenBucketLimiter(settings.api_rate_limit, settings.api_rate_burst)
        self.live = LiveMessages(queue_size=settings.realtime_queue_size)
        self.taps = BrokerTaps(broker, self._take)
        self._recorded: dict[str, dict[str, int]] = {}
        """The filters each organization records, with their QoS."""
        self._scopes: dict[str, OrgScope] = {}
        """The scope of each organization recording filters, by organization id."""
        self._shared = shared
        self._local_changes = 0
        """Changes of the recorded filters committed through this hub so far."""
        self._sync_interval = sync_interval
        self.shared_sink = RecordedSink(self.recorder, self._scope_of) if shared is not None else None
        """Where the shared queues' messages are written from (None with the embedded broker)."""
        self.state = ServiceState.CREATED
        self.tasks = BackgroundTasks("messaging")
        """The service's background loops (their crashes are counted in ``/metrics``)."""
        self.skipped_long_topics = 0

    # --- life cycle ----------------------------------------------------------------------------------

    async def __aenter__(self) -> MessagingService:
        if self.state is not ServiceState.CREATED:
            raise StateError(f"a MessagingService can be started only once (it is {self.state.value})")
        self.state = ServiceState.RUNNING
        if self._shared is not None and self.shared_sink is not None:
            self._shared.record_into(self.shared_sink)
        try:
            await self._restore()
            await self.tasks.__aenter__()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        self.tasks.loop("history-writer", self.recorder.run)
        self.tasks.loop("history-pruner", self._prune_loop)
        if self._shared is not None:
            self.tasks.loop("recorded-filters-sync", self._sync_loop)
        changes = self.database.changes
        changes.subscribe(FilterRecorded, self._committed(self._filter_recorded))
        changes.subscribe(FilterDropped, self._committed(self._filter_dropped))
        changes.subscribe(OrganizationDeleted, self._committed(self._organization_deleted))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.state is ServiceState.CLOSED:
            return
        self.state = ServiceState.CLOSING
        self.taps.clear()
        self._recorded.clear()
        if self.tasks.running:
            await self.recorder.flushed(wait=self.settings.shutdown_timeout / 2)
        await self.tasks.close()
        self.recorder.close()
        self.state = ServiceState.CLOSED

    async def _restore(self) -> None:
        for scope, topic_filter, qos in await self._stored_filters():
            self._filter_recorded(FilterRecorded(scope, topic_filter, qos))
        if self._recorded:
            logger.info("recording %d topic filters again", self.subscription_count())

    async def _stored_filters(self) -> list[tuple[OrgScope, str, int]]:
        async with self.database.session() as session:
            rows = await session.execute(
                select(MessageSubscription, Organization.short_id).join(
                    Organization, Organization.id == MessageSubscription.organization_id
                )
            )
            return [
                (OrgScope.of(subscription.organization_id, short_id), subscription.topic_filter, subscription.qos)
                for subscription, short_id in rows.all()
            ]

    def _committed(self, handler: Callable[[C], None]) -> Callable[[C], None]:
        """``handler`` of a change committed through this hub, counted (see :meth:`_sync_loop`)."""

        def handle(change: C) -> None:
            self._local_changes += 1
            handler(change)

        return handle

    async def _sync_loop(self) -> None:
        # Another hub's changes reach this one through the database only.
        while True:
            await asyncio.sleep(self._sync_interval)
            before = self._local_changes
            stored = await self._stored_filters()
            if self._local_changes != before:
                # A change committed here while the filters were read may be missing from what was read (and
                # would be undone): read again next time.
                continue
            wanted = {(scope.organization_id, topic_filter) for scope, topic_filter, _ in stored}
            for organization_id, filters in list(self._recorded.items()):
                for topic_filter in list(filters):
                    if (organization_id, topic_filter) not in wanted:
                        self._filter_dropped(FilterDropped(organization_id, topic_filter))
            for scope, topic_filter, qos in stored:
                if self._recorded.get(scope.organization_id, {}).get(topic_filter) != qos:
                    self._filter_recorded(FilterRecorded(scope, topic_filter, qos))

    async def _scope_of(self, short_id: str) -> OrgScope | None:
        prefix = namespace_prefix(short_id)
        for scope in self._scopes.values():
            if scope.namespace.prefix == prefix:
                return scope
        async with self.database.session() as session:
            organization_id = await session.scalar(select(Organization.id).where(Organization.short_id == short_id))
        return None if organization_id is None else OrgScope.of(organization_id, short_id)

    async def _prune_loop(self) -> None:
        # Every prune_interval, or sooner once half a history's worth of messages was written since the last
        # prune, so a busy organization overshoots its bound by at most about half of it.
        while True:
            written_before = self.recorder.recorded
            await self.prune()
            threshold = written_before + max(1, self.settings.max_history_size // 2)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._prune_interval):
                    await self.recorder.written_at_least(threshold)

    async def prune(self) -> int:
        """Apply the history bounds now (count per organization, retention age); return rows deleted."""
        cutoff = history.retention_cutoff(utcnow(), self.settings.message_retention_hours)
        try:
            async with self.database.session() as session:
                deleted = await history.prune(
                    session, max_per_organization=self.settings.max_history_size, older_than=cutoff
                )
        except Exception:
            logger.exception("pruning the message history failed")
            return 0
        if deleted:
            logger.debug("pruned %d history messages", deleted)
        return deleted

    # --- broker ----------------------------------------------------------------------------------------

    def require_broker(self) -> None:
        """Check that the broker is up, before work that needs it is accepted.

        Raises:
            UnavailableError: the broker is not running.
        """
        try:
            self._broker.stats()
        except StateError as exc:
            raise UnavailableError(f"the MQTT broker is not available: {exc.message}") from None

    @property
    def broker_connected(self) -> bool:
        """Whether the broker is up and answering."""
        try:
            self._broker.stats()
        except MQTTHubError:
            return False
        return True

    def _take(self, scope: OrgScope, message: BrokerMessage) -> None:
        """Take a message of one of the organization's filters (once, however many match): record it if a
        recorded filter matches, and hand it to the organization's live clients."""
        organization_id = scope.organization_id
        topic = scope.namespace.external(message.topic)
        history_id: str | None = None
        recorded = self.records(organization_id, topic)
        if recorded and len(topic) > MAX_RECORDED_TOPIC_LENGTH:
            self.skipped_long_topics += 1
            recorded = False
        if recorded and self._shared is None:
            entry = Record.of(organization_id, topic, message)
            history_id = entry.id
            self.recorder.offer(entry)
        if self.live.has_listeners(organization_id):
            # With shared recording the row is written by whichever hub takes the message from the shared queue:
            # the frame carries no history id then.
            text = live_message_text(topic, message, history_id=history_id)
            self.live.publish(LiveMessage(organization_id, topic, text), in_feed=recorded)

    def records(self, organization_id: str, topic: str) -> bool:
        """Whether one of the organization's recorded filters matches ``topic``."""
        return any(topic_matches(topic_filter, topic) for topic_filter in self._recorded.get(organization_id, ()))

    # --- operations ------------------------------------------------------------------------------------

    async def publish(self, scope: OrgScope, topic: str, payload: bytes, *, qos: int, retain: bool) -> None:
        """Publish to a checked topic of the caller's namespace.

        Raises:
            UnavailableError: the broker is not running.
        """
        try:
            await self._broker.publish(scope.namespace.internal(topic), payload, qos=qos, retain=retain)
        except StateError as exc:
            raise UnavailableError(f"the MQTT broker is not available: {exc.message}") from None

    async def subscribe(self, session: AsyncSession, scope: OrgScope, topic_filter: str, qos: int) -> bool:
        """Record a checked filter's messages once ``session`` commits; False if it already was (its QoS is updated).

        Raises:
            UnavailableError: the broker is not running.
        """
        self.require_broker()  # said now: after the commit there is nobody left to tell
        row = await session.scalar(
            select(MessageSubscription).where(
                MessageSubscription.organization_id == scope.organization_id,
                MessageSubscription.topic_filter == topic_filter,
            )
        )
        if row is None:
            session.add(MessageSubscription(organization_id=scope.organization_id, topic_filter=topic_filter, qos=qos))
        else:
            row.qos = qos
        await session.flush()
        record(session, FilterRecorded(scope, topic_filter, qos))
        return row is None

    async def unsubscribe(self, session: AsyncSession, scope: OrgScope, topic_filter: str) -> None:
        """Stop recording a filter once ``session`` commits.

        Raises:
            NotFoundError: the organization does not record this filter.
        """
        row = await session.scalar(
            select(MessageSubscription).where(
                MessageSubscription.organization_id == scope.organization_id,
                MessageSubscription.topic_filter == topic_filter,
            )
        )
        if row is None and topic_filter not in self._recorded.get(scope.organization_id, {}):
            raise NotFoundError(f"not subscribed to {topic_filter!r}")
        if row is not None:
            await session.delete(row)
            await session.flush()
        record(session, FilterDropped(scope.organization_id, topic_filter))

    def _filter_recorded(self, change: FilterRecorded) -> None:
        if self.state is not ServiceState.RUNNING:
            return
        recorded = self._recorded.setdefault(change.scope.organization_id, {})
        self._scopes[change.scope.organization_id] = change.scope
        if change.topic_filter in recorded:
            with contextlib.suppress(UnavailableError):  # still down: subscribed by a later change
                self.taps.ensure(change.scope.organization_id, change.topic_filter)
        else:
            self.taps.add(change.scope, change.topic_filter, required=False)
        recorded[change.topic_filter] = change.qos
        if self._shared is not None:
            self._shared.bind_recorded(change.scope.namespace.internal(change.topic_filter))

    def _filter_dropped(self, change: FilterDropped) -> None:
        recorded = self._recorded.get(change.organization_id)
        if recorded is None or recorded.pop(change.topic_filter, None) is None:
            return
        scope = self._scopes[change.organization_id]
        if not recorded:
            del self._recorded[change.organization_id]
            del self._scopes[change.organization_id]
        self.taps.discard(change.organization_id, change.topic_filter)
        if self._shared is not None:
            self._shared.unbind_recorded(scope.namespace.internal(change.topic_filter))

    def _organization_deleted(self, change: OrganizationDeleted) -> None:
        for topic_filter in list(self._recorded.get(change.organization_id, ())):
            self._filter_dropped(FilterDropped(change.organization_id, topic_filter))

    def filters(self, organization_id: str) -> list[str]:
        """The filters an organization records, sorted."""
        return sorted(self._recorded.get(organization_id, ()))

    def subscription_count(self, organization_id: str | None = None) -> int:
        """Recorded filters of one organization, or of all."""
        if organization_id is None:
            return sum(len(filters) for filters in self._recorded.values())
        return len(self._recorded.get(organization_id, ()))

    # --- live ------------------------------------------------------------------------------------------

    def follow(self, scope: OrgScope, topic_filter: str) -> None:
        """Have the broker hand over a checked filter's messages for a live client's own filter (not recorded);
        undone by :meth:`unfollow`.

        Raises:
            UnavailableError: the broker is not running.
        """
        self.taps.add(scope, topic_filter)

    def unfollow(self, scope: OrgScope, topic_filter: str) -> None:
        """Undo one :meth:`follow`."""
        self.taps.discard(scope.organization_id, topic_filter)

    async def health(self) -> MessagingHealth:
        """The messaging fields of ``GET /health`` (totals over every organization, no topics)."""
        message_count: int | None = None
        try:
            async with self.database.session() as session:
                message_count = await history.count_all(session)
        except Exception:
            # /health must answer while the database is down; its component status says so.
            logger.warning("cannot count history messages for /health", exc_info=True)
        return {
            "mqtt_connected": self.broker_connected,
            "message_count": message_count,
            "active_subscriptions": self.subscription_count(),
            "websocket_connections": self.live.count(),
        }
