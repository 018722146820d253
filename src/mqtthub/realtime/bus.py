"""The live event bus: publishers never wait, every subscriber has a bounded queue.

``RealtimeBus.publish`` is called from the ingest writer right after a batch commits. It
only appends to each matching subscriber's queue, so a slow WebSocket or Socket.IO client
can never slow ingestion down; what happens when a subscriber's queue is full is that
subscriber's :class:`OverflowPolicy`.

Events are scoped to one organization: a subscriber names its organization when it
subscribes and never sees another's events. Topic filters use MQTT syntax against the
event's topic as a device of the organization would name it (``devices/{id}/datastream``,
``device/{id}/telemetry/{sensor}``, ``devices/{id}/status``, ``devices/{id}/alerts``,
``devices/{id}/commands``).
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mqtthub.errors import StateError, ValidationFailedError
from mqtthub.mqtt.topics import topic_matches, validate_topic_filter

logger = logging.getLogger(__name__)

DEFAULT_QUEUE_SIZE = 1000
MAX_FILTERS = 64


class OverflowPolicy(enum.StrEnum):
    """What a full subscriber queue does with one more event."""

    DROP_OLDEST = "drop_oldest"
    """Discard the oldest queued event and count it; the client is told how many it missed."""
    DISCONNECT = "disconnect"
    """Close the subscription; the endpoint then disconnects the slow client."""


@dataclass(frozen=True, slots=True)
class Event:
    """One live event: ``type`` is datastream, telemetry, status, alert or command."""

    organization_id: str
    type: str
    topic: str
    data: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The JSON object sent to WebSocket clients."""
        return {"event": self.type, "topic": self.topic, "data": self.data}


class Subscriber:
    """A bounded queue of events for one client; ``async for event in subscriber`` reads it."""

    def __init__(
        self,
        bus: RealtimeBus,
        organization_id: str | None,
        filters: Iterable[str],
        *,
        maxsize: int,
        policy: OverflowPolicy,
    ) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.organization_id = organization_id
        self.maxsize = maxsize
        self.policy = policy
        self.dropped = 0
        self.closed = False
        self.filters: tuple[str, ...] = ()
        self._bus = bus
        self._queue: deque[Event] = deque()
        self._ready = asyncio.Event()
        self.set_filters(filters)

    def set_filters(self, filters: Iterable[str]) -> None:
        """Replace the topic filters (MQTT syntax); an empty set receives nothing.

        Raises:
            ValidationFailedError: a filter is not a valid MQTT topic filter, or there are too many.
        """
        chosen = tuple(dict.fromkeys(filters))
        if len(chosen) > MAX_FILTERS:
            raise ValidationFailedError(f"at most {MAX_FILTERS} topic filters", field="topics")
        for topic_filter in chosen:
            if not isinstance(topic_filter, str) or not topic_filter or topic_filter.startswith("$"):
                raise ValidationFailedError(f"invalid topic filter {topic_filter!r}", field="topics")
            try:
                validate_topic_filter(topic_filter)
            except Exception:
                raise ValidationFailedError(f"invalid topic filter {topic_filter!r}", field="topics") from None
        self.filters = chosen

    def wants(self, event: Event) -> bool:
        """Whether the event matches one of the filters."""
        return any(topic_matches(topic_filter, event.topic) for topic_filter in self.filters)

    def put(self, event: Event) -> None:
        """Queue an event without waiting, applying the overflow policy when full."""
        if self.closed:
            return
        if len(self._queue) >= self.maxsize:
            if self.policy is OverflowPolicy.DISCONNECT:
                logger.info("live subscriber too slow (%d events queued): disconnecting it", len(self._queue))
                self.close()
                return
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(event)
        self._ready.set()

    def take_dropped(self) -> int:
        """How many events were dropped since the last call."""
        dropped, self.dropped = self.dropped, 0
        return dropped

    async def get(self) -> Event:
        """The next event; waits for one.

        Raises:
            StateError: the subscription is closed (for example by the DISCONNECT policy).
        """
        while not self._queue:
            if self.closed:
                raise StateError("the live subscription is closed")
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()

    def qsize(self) -> int:
        """Events waiting."""
        return len(self._queue)

    def close(self) -> None:
        """Stop receiving; a waiting :meth:`get` raises :class:`StateError`. Idempotent."""
        if self.closed:
            return
        self.closed = True
        self._queue.clear()
        self._ready.set()
        self._bus.remove(self)

    def __aiter__(self) -> Subscriber:
        return self

    async def __anext__(self) -> Event:
        try:
            return await self.get()
        except StateError:
            raise StopAsyncIteration from None


class RealtimeBus:
    """Fans events out to subscribers of their organization; see the module docstring."""

    def __init__(self, *, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self.queue_size = queue_size
        self.published = 0
        self._by_org: dict[str, set[Subscriber]] = {}
        self._everything: dict[Subscriber, Callable[[str], bool]] = {}

    def subscribe(
        self,
        organization_id: str,
        filters: Iterable[str] = (),
        *,
        maxsize: int | None = None,
        policy: OverflowPolicy = OverflowPolicy.DROP_OLDEST,
    ) -> Subscriber:
        """A new subscriber to one organization's events matching ``filters``."""
        subscriber = Subscriber(self, organization_id, filters, maxsize=maxsize or self.queue_size, policy=policy)
        self._by_org.setdefault(organization_id, set()).add(subscriber)
        return subscriber

    def subscribe_all(self, *, interest: Callable[[str], bool], maxsize: int | None = None) -> Subscriber:
        """A subscriber to the events of every organization for which ``interest(organization_id)`` is true.

        For bridges that route per organization themselves (Socket.IO rooms).
        """
        subscriber = Subscriber(
            self, None, ("#",), maxsize=maxsize or self.queue_size, policy=OverflowPolicy.DROP_OLDEST
        )
        self._everything[subscriber] = interest
        return subscriber

    def has_listeners(self, organization_id: str) -> bool:
        """Whether any subscriber would receive an event of the organization (so it is worth building)."""
        if organization_id in self._by_org:
            return True
        return any(interest(organization_id) for interest in self._everything.values())

    def remove(self, subscriber: Subscriber) -> None:
        """Forget a subscriber (called by :meth:`Subscriber.close`)."""
        if subscriber.organization_id is None:
            self._everything.pop(subscriber, None)
            return
        members = self._by_org.get(subscriber.organization_id)
        if members is not None:
            members.discard(subscriber)
            if not members:
                del self._by_org[subscriber.organization_id]

    def publish(self, event: Event) -> None:
        """Hand an event to every interested subscriber; never waits."""
        self.published += 1
        for subscriber in list(self._by_org.get(event.organization_id, ())):
            if subscriber.wants(event):
                subscriber.put(event)
        for subscriber, interest in list(self._everything.items()):
            if interest(event.organization_id):
                subscriber.put(event)

    @property
    def subscriber_count(self) -> int:
        """Open subscriptions."""
        return sum(len(members) for members in self._by_org.values()) + len(self._everything)
