"""The one live fan-out: publishers never wait, every subscriber has a bounded queue and an overflow policy.

Both live feeds run on it: telemetry events (``/api/v1/stream``, Socket.IO), published by the ingest writer
right after a batch commits, and the messaging service's broker messages (``/ws``), published on the broker's
routing path. :meth:`FanOut.publish` only appends to the queue of each matching subscriber, so a slow client
can never slow ingestion or routing down; when a subscriber's queue is full its :class:`OverflowPolicy`
decides, and the fan-out counts what was dropped and whom it disconnected (``/metrics``).

Events are scoped to one organization: a subscriber names its organization and never sees another's events.
Its topic filters use MQTT syntax against the event's topic as the organization names it; ``allowed``
bounds what it may see at all (an API token's subscribe filters). A subscriber without filters of its own
follows the organization's *feed*: the events published with ``in_feed=True`` (for ``/ws``, the messages the
organization records).
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import deque
from collections.abc import Iterable
from typing import Generic, Protocol, TypeVar

from mqtthub.errors import StateError, ValidationFailedError
from mqtthub.mqtt.topics import topic_matches, validate_topic_filter

logger = logging.getLogger(__name__)

DEFAULT_QUEUE_SIZE = 1000
MAX_FILTERS = 64
SLOW_CLIENT_CLOSE_CODE = 1013
"""WebSocket close code for a client the DISCONNECT policy dropped: "try again later" (RFC 6455 registry)."""
SLOW_CLIENT_GRACE = 10.0
"""Seconds a dropped client has to take its last frames (the error and the close) before the hub gives up."""


class Routed(Protocol):
    """What the fan-out needs of an event: whose it is and its topic (as the organization names it)."""

    @property
    def organization_id(self) -> str: ...

    @property
    def topic(self) -> str: ...


E = TypeVar("E", bound=Routed)


class OverflowPolicy(enum.StrEnum):
    """What a full subscriber queue does with one more event."""

    DROP_OLDEST = "drop_oldest"
    """Discard the oldest queued event and count it; the client is told how many it missed."""
    DISCONNECT = "disconnect"
    """Close the subscription; the endpoint then disconnects the slow client, which may reconnect."""


def overflow_policy(name: str | None) -> OverflowPolicy:
    """The policy a client asked for by name (``drop_oldest`` when it named none).

    Raises:
        ValidationFailedError: no policy has that name.
    """
    if name is None:
        return OverflowPolicy.DROP_OLDEST
    try:
        return OverflowPolicy(name)
    except ValueError:
        choices = ", ".join(policy.value for policy in OverflowPolicy)
        raise ValidationFailedError(f"overflow must be one of {choices}", field="overflow") from None


def check_filters(filters: Iterable[str]) -> tuple[str, ...]:
    """The filters without repeats, if they are valid MQTT topic filters a live client may use.

    Raises:
        ValidationFailedError: a filter is invalid or ``$``-prefixed, or there are more than :data:`MAX_FILTERS`.
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
    return chosen


class Subscriber(Generic[E]):
    """A bounded queue of events for one client; ``async for event in subscriber`` reads it."""

    def __init__(
        self,
        fanout: FanOut[E],
        organization_id: str,
        filters: Iterable[str] | None,
        *,
        allowed: Iterable[str] | None,
        maxsize: int,
        policy: OverflowPolicy,
    ) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.organization_id = organization_id
        self.allowed = None if allowed is None else tuple(allowed)
        """Filters bounding what this subscriber may see (None: all of its organization's events)."""
        self.maxsize = maxsize
        self.policy = policy
        self.dropped = 0
        """Events dropped since the last :meth:`take_dropped`."""
        self.closed = False
        self.overflowed = False
        """True once the DISCONNECT policy closed this subscriber."""
        self.filters: tuple[str, ...] | None = None
        self._fanout = fanout
        self._queue: deque[E] = deque()
        self._ready = asyncio.Event()
        self._ended = asyncio.Event()
        self.set_filters(filters)

    def set_filters(self, filters: Iterable[str] | None) -> None:
        """Replace the topic filters (MQTT syntax); None follows the feed, an empty set receives nothing.

        Raises:
            ValidationFailedError: a filter is not valid (see :func:`check_filters`).
        """
        self.filters = None if filters is None else check_filters(filters)

    def may_read(self, topic: str) -> bool:
        """Whether ``topic`` lies within what this subscriber may see."""
        return self.allowed is None or any(topic_matches(allowed, topic) for allowed in self.allowed)

    def wants(self, event: E, in_feed: bool) -> bool:
        """Whether the event is for this subscriber (organization checked by the fan-out)."""
        if self.filters is None:
            chosen = in_feed
        else:
            chosen = any(topic_matches(topic_filter, event.topic) for topic_filter in self.filters)
        return chosen and self.may_read(event.topic)

    def put(self, event: E) -> None:
        """Queue an event without waiting, applying the overflow policy when full."""
        if self.closed:
            return
        if len(self._queue) >= self.maxsize:
            if self.policy is OverflowPolicy.DISCONNECT:
                logger.info(
                    "%s subscriber too slow (%d events queued): disconnecting it", self._fanout.name, self.maxsize
                )
                self.overflowed = True
                self._fanout.disconnected += 1
                self.close()
                return
            self._queue.popleft()
            self.dropped += 1
            self._fanout.dropped += 1
        self._queue.append(event)
        self._ready.set()

    @property
    def overflow_message(self) -> str:
        """What a client the DISCONNECT policy dropped is told before its connection closes."""
        return f"too slow: more than {self.maxsize} events were waiting; reconnect to continue"

    def take_dropped(self) -> int:
        """How many events were dropped since the last call."""
        dropped, self.dropped = self.dropped, 0
        return dropped

    async def get(self) -> E:
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
        self._ended.set()
        self._fanout.remove(self)

    async def wait_closed(self) -> None:
        """Return once the subscriber is closed: an endpoint blocked on a slow client's socket learns of it."""
        await self._ended.wait()

    def __aiter__(self) -> Subscriber[E]:
        return self

    async def __anext__(self) -> E:
        try:
            return await self.get()
        except StateError:
            raise StopAsyncIteration from None


class FanOut(Generic[E]):
    """Fans events out to subscribers of their organization; see the module docstring.

    Args:
        name: What it serves, for logs and metrics (``stream``, ``ws``).
        queue_size: Events queued per subscriber unless it asks for another bound.
    """

    def __init__(self, name: str, *, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self.name = name
        self.queue_size = queue_size
        self.published = 0
        self.dropped = 0
        """Events discarded by DROP_OLDEST subscribers, over all of them."""
        self.disconnected = 0
        """Subscribers closed by the DISCONNECT policy."""
        self._by_org: dict[str, set[Subscriber[E]]] = {}

    def subscribe(
        self,
        organization_id: str,
        filters: Iterable[str] | None = (),
        *,
        allowed: Iterable[str] | None = None,
        maxsize: int | None = None,
        policy: OverflowPolicy = OverflowPolicy.DROP_OLDEST,
    ) -> Subscriber[E]:
        """A new subscriber to one organization's events matching ``filters`` (None: its feed).

        Raises:
            ValidationFailedError: a filter is not valid (see :func:`check_filters`).
        """
        subscriber = Subscriber(
            self, organization_id, filters, allowed=allowed, maxsize=maxsize or self.queue_size, policy=policy
        )
        members = self._by_org.setdefault(organization_id, set())
        members.add(subscriber)
        if len(members) == 1:
            self.organization_joined(organization_id)
        return subscriber

    def organization_joined(self, organization_id: str) -> None:
        """Called when an organization gets its first subscriber (a hook for subclasses)."""

    def organization_left(self, organization_id: str) -> None:
        """Called when an organization's last subscriber leaves (a hook for subclasses)."""

    def has_listeners(self, organization_id: str) -> bool:
        """Whether any subscriber would receive an event of the organization (so it is worth building)."""
        return organization_id in self._by_org

    def remove(self, subscriber: Subscriber[E]) -> None:
        """Forget a subscriber (called by :meth:`Subscriber.close`)."""
        members = self._by_org.get(subscriber.organization_id)
        if members is not None:
            members.discard(subscriber)
            if not members:
                del self._by_org[subscriber.organization_id]
                self.organization_left(subscriber.organization_id)

    def publish(self, event: E, *, in_feed: bool = True) -> None:
        """Hand an event to every interested subscriber; never waits.

        ``in_feed`` says whether subscribers following the organization's feed (no filters of their own)
        receive it.
        """
        self.published += 1
        for subscriber in list(self._by_org.get(event.organization_id, ())):
            if subscriber.wants(event, in_feed):
                subscriber.put(event)

    def count(self, organization_id: str | None = None) -> int:
        """Open subscriptions of one organization, or of all."""
        if organization_id is not None:
            return len(self._by_org.get(organization_id, ()))
        return sum(len(members) for members in self._by_org.values())
