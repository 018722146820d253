"""Per-client session state [MQTT-4.1]: subscriptions, messages in flight and queued, QoS 2 receipts.

A :class:`Session` outlives its connections when the client asked for a persistent
session. It owns the outbound side of QoS 1/2: packet identifiers, the in-flight
window (the client's receive maximum), and the bounded queue of messages waiting
for the window or for the client to come back (overflow policy: drop oldest,
counted in ``BrokerStats.queue_dropped``).

A connected client that acknowledges more slowly than its publishers publish would fill
that queue and lose messages while every publisher still got its PUBACK at once. So once
the queue of a connected session holds half its bound, the acknowledgements of the QoS 1/2
messages that keep landing in it are held back (:meth:`Session.hold`) until the client has
worked the queue down to a quarter: a publisher waiting for its acknowledgements stops
(a 3.1.1 publisher that does not is no longer read once it has ``receive_maximum`` of them
outstanding), so the publishers are slowed to the pace of the slowest client they feed,
at no cost in system calls. The queue then grows past half its bound by no more than the
messages its publishers have in flight (one each for a fleet of devices).

A client that stops acknowledging altogether must not stall its publishers for good: after
``publisher_hold_limit`` seconds the session lets them go (:meth:`Session.give_up_hold`)
and, until its queue is down to a quarter again, drops its oldest messages instead. An
offline session (a persistent session waiting for its client) never holds anyone back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from mqtthub.broker.episodes import EpisodeLog
from mqtthub.broker.hooks import BrokerMessage, Principal
from mqtthub.broker.stats import BrokerStats
from mqtthub.broker.subscriptions import SharedGroup, Subscription
from mqtthub.broker.topic_aliases import OutboundAliases
from mqtthub.mqtt.encode import encode_aliased_publish, encode_publish
from mqtthub.mqtt.packets import PROTOCOL_V5, Properties, Will

if TYPE_CHECKING:
    from mqtthub.broker.persistence import StateJournal

logger = logging.getLogger(__name__)
episodes = EpisodeLog()

SessionKey = tuple[str, str]
"""(mountpoint, client id): client ids are unique per namespace, so one organization cannot take over another's."""


@dataclass(slots=True, eq=False)
class Outgoing:
    """One message on its way to one session."""

    message: BrokerMessage
    qos: int
    retain: bool
    identifiers: tuple[int, ...] = ()
    group: SharedGroup | None = None
    """The shared group it was routed through, so it can go to another member if this one leaves."""
    packet_id: int = 0
    released: bool = False
    """QoS 2: PUBREC received and PUBREL sent; only PUBCOMP is awaited [MQTT-4.3.3]."""
    store_id: int = 0
    """Its id in the state journal while a stored session holds it; 0 otherwise."""


class SessionLink(Protocol):
    """What a session needs from the connection currently attached to it."""

    protocol_level: int
    send_quota: int
    """The client's receive maximum: QoS 1/2 messages it accepts unacknowledged [MQTT-3.3.4-7]."""
    aliases_out: OutboundAliases | None
    """Topic aliases towards a 5.0 client that allows them [MQTT-3.3.2.3.4]; ``None`` otherwise."""

    @property
    def write_paused(self) -> bool:
        """Whether the socket is not draining (transport above its high-water mark)."""
        ...

    def write(self, data: bytes) -> None:
        """Queue bytes for the next batched write."""
        ...

    def write_message(self, data: bytes, qos: int) -> bool:
        """Queue an encoded PUBLISH; False if it was dropped (too large, or QoS 0 beyond the bound)."""
        ...

    def write_pubrel(self, packet_id: int) -> None:
        """Send PUBREL for ``packet_id``."""
        ...


def remaining_expiry(message: BrokerMessage, now: float) -> int | None:
    """Seconds left of a message's expiry interval, or None if it has none [MQTT-3.3.2-6]."""
    props = message.properties
    if props is None or props.message_expiry_interval is None:
        return None
    return max(0, int(message.received_at + props.message_expiry_interval - now))


def is_expired(message: BrokerMessage, now: float) -> bool:
    """Whether a message's expiry interval has passed; expired messages are not delivered [MQTT-3.3.2-5]."""
    props = message.properties
    if props is None or props.message_expiry_interval is None:
        return False
    return now >= message.received_at + props.message_expiry_interval


_NO_IDS: frozenset[int] = frozenset()

EncodeCache = dict[tuple[object, ...], tuple[bytes, int]]
"""One fan-out's encoded PUBLISH templates, keyed by everything that changes the bytes but the packet id."""


class Session:
    """State of one client id in one namespace (see the module docstring)."""

    __slots__ = (
        "_high_water",
        "_hold_spent",
        "_inbound_qos2",
        "_low_water",
        "_max_queued",
        "_next_packet_id",
        "_stats",
        "backlogged",
        "client_id",
        "disconnected_at",
        "expiry_interval",
        "expiry_timer",
        "held",
        "held_since",
        "inbound_qos1",
        "inflight",
        "journal",
        "key",
        "link",
        "mountpoint",
        "principal",
        "queue",
        "subscriptions",
        "will",
        "will_at",
        "will_timer",
    )

    def __init__(self, key: SessionKey, principal: Principal, *, max_queued: int, stats: BrokerStats) -> None:
        self.key = key
        self.mountpoint, self.client_id = key
        self.principal = principal
        self.subscriptions: dict[tuple[str | None, str], Subscription] = {}
        """Keyed by (share group, internal filter)."""
        self.link: SessionLink | None = None
        self.inflight: dict[int, Outgoing] = {}
        self.queue: deque[Outgoing] | None = None
        """Messages waiting for room in the in-flight window, oldest first; made when the first one waits
        (an empty deque costs about 600 bytes, and most sessions never queue anything)."""
        self._inbound_qos2: set[int] | None = None
        """Ids of QoS 2 messages received and not released yet; made with the first (an empty set costs 216
        bytes, and most sessions never receive QoS 2)."""
        self.inbound_qos1: dict[int, asyncio.Future[int]] = {}
        """QoS 1 messages offered to the sink, by packet id, oldest first: their store outcome (see
        :meth:`remember_qos1`). Not persisted: it recognises re-sends within one broker run."""
        self.expiry_interval = 0
        self.expiry_timer: asyncio.TimerHandle | None = None
        self.will: Will | None = None
        """The will of the last connection, waiting for its delay interval [MQTT-3.1.3-9]."""
        self.will_timer: asyncio.TimerHandle | None = None
        self.will_at: float | None = None
        """Unix time the delayed will is due."""
        self.disconnected_at: float | None = None
        self.journal: StateJournal | None = None
        """Set while the session is stored (persistence on, expiry interval above 0)."""
        self._max_queued = max_queued
        self._high_water = max(1, max_queued // 2)
        self._low_water = max_queued // 4
        self._stats = stats
        self._next_packet_id = 1
        self.backlogged = False
        """The queue of the connected client reached half its bound and is not down to a quarter yet: the
        acknowledgements of messages landing in it wait (see the module docstring)."""
        self.held: list[Callable[[], None]] | None = None
        """Acknowledgements held back until the queue is worked down (see the module docstring), in order."""
        self.held_since = 0.0
        """Monotonic time the current hold began."""
        self._hold_spent = False
        """The last hold outlasted its limit: no new one until the queue is down to a quarter."""

    @property
    def inbound_qos2(self) -> AbstractSet[int]:
        """Ids of the QoS 2 messages received from the client and not released by its PUBREL yet."""
        return self._inbound_qos2 if self._inbound_qos2 is not None else _NO_IDS

    def receive_qos2(self, packet_id: int) -> None:
        """Remember a QoS 2 message received, until :meth:`release_qos2` [MQTT-4.3.3-9]."""
        if self._inbound_qos2 is None:
            self._inbound_qos2 = set()
        self._inbound_qos2.add(packet_id)

    def release_qos2(self, packet_id: int) -> bool:
        """Forget a received QoS 2 message; whether it was remembered."""
        inbound = self._inbound_qos2
        if inbound is None or packet_id not in inbound:
            return False
        inbound.discard(packet_id)
        return True

    def remember_qos1(self, packet_id: int, outcome: asyncio.Future[int], *, limit: int) -> None:
        """Remember the sink's outcome for a QoS 1 PUBLISH, so a re-send of it is not stored twice.

        A client re-sends a QoS 1 PUBLISH with DUP=1 [MQTT-3.3.1-1] and the same packet id when it saw
        no PUBACK, typically because the connection dropped [MQTT-4.4.0-1]; it reuses an id for a new message
        (DUP=0) only after the PUBACK came [MQTT-2.2.1-3], which :meth:`forget_qos1` records. Only
        the newest ``limit`` ids are kept; a re-send of an older one is stored again (at least once).
        """
        recent = self.inbound_qos1
        recent.pop(packet_id, None)
        recent[packet_id] = outcome
        while len(recent) > limit:
            del recent[next(iter(recent))]  # the oldest: dicts keep insertion order

    def forget_qos1(self, packet_id: int, outcome: asyncio.Future[int] | None = None) -> None:
        """Forget an id: reused for a new message, or (``outcome`` given) its message was not stored."""
        if outcome is None or self.inbound_qos1.get(packet_id) is outcome:
            self.inbound_qos1.pop(packet_id, None)

    @property
    def online(self) -> bool:
        """Whether a connection is attached."""
        return self.link is not None

    def changed(self) -> None:
        """Tell the journal (if stored) that subscriptions, expiry, QoS 2 receipts or the will changed."""
        if self.journal is not None:
            self.journal.session_changed(self)

    def deliver(self, out: Outgoing, cache: EncodeCache | None = None) -> None:
        """Send a message now, or hold it (QoS 1/2) until the window opens or the client returns."""
        link = self.link
        if out.qos == 0:
            if link is None:
                return
            aliases = link.aliases_out
            if aliases is None:  # the fan-out's hot path: the shared encoding, no extra call
                data = self._encode(out, link.protocol_level, cache)
                if data is not None and link.write_message(data, 0):
                    self._delivered(out)
            elif self._write_aliased(out, link, aliases, cache):
                self._delivered(out)
            return
        if link is None or self.queue or len(self.inflight) >= link.send_quota or link.write_paused:
            self._enqueue(out)
            return
        self._transmit(out, link, cache)

    def pump(self) -> None:
        """Move queued messages into the in-flight window while it has room."""
        link = self.link
        if link is None:
            return
        queue = self.queue
        while queue and len(self.inflight) < link.send_quota and not link.write_paused:
            self._transmit(queue.popleft(), link, None)
        if queue is not None and len(queue) <= self._low_water:
            if not queue and self.queue is queue:
                self.queue = None
            self._hold_spent = False
            if self.backlogged:
                self.release_held()

    def hold(self, release: Callable[[], None], now: float) -> None:
        """Call ``release`` (which sends an acknowledgement) once the queue is down to a quarter of its bound."""
        held = self.held
        if held is None:
            held = self.held = []
            self.held_since = now
        held.append(release)

    def release_held(self) -> None:
        """Send every acknowledgement held back (the queue was worked down, or the client left)."""
        self.backlogged = False
        held, self.held = self.held, None
        for release in held or ():
            release()

    def give_up_hold(self) -> None:
        """The client did not work its queue down within the hold limit: let the publishers go, drop oldest."""
        self._hold_spent = True
        self.release_held()

    def resume(self) -> None:
        """Re-send what was in flight when the previous connection ended [MQTT-4.4.0-1], then the queue."""
        link = self.link
        if link is None:
            return
        now = time.time()
        for packet_id, out in list(self.inflight.items()):
            if out.released:
                link.write_pubrel(packet_id)
                continue
            data = self._encode_one(out, link.protocol_level, dup=True, now=now)
            if data is not None:
                link.write_message(data, out.qos)
            else:
                del self.inflight[packet_id]
                if self.journal is not None:
                    self.journal.dropped(out)
        self.pump()

    def acknowledged(self, packet_id: int) -> bool:
        """PUBACK (QoS 1) or PUBCOMP (QoS 2) received; False if the packet id is unknown."""
        out = self.inflight.pop(packet_id, None)
        if out is None:
            return False
        if self.journal is not None:
            self.journal.dropped(out)
        self._delivered(out)
        self.pump()
        return True

    def received(self, packet_id: int, reason_code: int) -> bool:
        """PUBREC received for a QoS 2 message; True if PUBREL should follow [MQTT-4.3.3-4]."""
        out = self.inflight.get(packet_id)
        if out is None or out.qos != 2:
            return False
        if reason_code >= 0x80:
            del self.inflight[packet_id]
            if self.journal is not None:
                self.journal.dropped(out)
            self.pump()
            return False
        out.released = True
        if self.journal is not None:
            self.journal.held(self, out)
        return True

    def take_shared(self, group: SharedGroup | None = None) -> list[Outgoing]:
        """Remove and return the unacknowledged messages that came through shared groups (or one group).

        Messages already released (PUBREL sent) stay: the client has them.
        """
        if not self.queue and not self.inflight:
            return []  # most sessions at a disconnect: nothing held at all

        def shared(out: Outgoing) -> bool:
            return out.group is not None and (group is None or out.group is group)

        queue = self.queue or ()
        taken = [out for out in queue if shared(out)]
        if taken:
            self.queue = deque(out for out in queue if not shared(out))
        for packet_id, out in list(self.inflight.items()):
            if shared(out) and not out.released:
                del self.inflight[packet_id]
                taken.append(out)
        if self.journal is not None:
            for out in taken:
                self.journal.dropped(out)
        return taken

    def _enqueue(self, out: Outgoing) -> None:
        journal = self.journal
        queue = self.queue
        if queue is None:
            queue = self.queue = deque()
        if len(queue) >= self._max_queued:
            dropped = queue.popleft()
            self._stats.queue_dropped += 1
            episodes(
                logger,
                logging.WARNING,
                ("queue", self.key),
                "session of client %s is full (%d messages): dropping the oldest",
                self.client_id,
                self._max_queued,
            )
            if journal is not None:
                journal.dropped(dropped)
        queue.append(out)
        if journal is not None:
            journal.held(self, out)
        if len(queue) >= self._high_water and not self.backlogged and not self._hold_spent and self.link is not None:
            self.backlogged = True

    def _transmit(self, out: Outgoing, link: SessionLink, cache: EncodeCache | None) -> None:
        journal = self.journal
        props = out.message.properties
        if props is not None and props.message_expiry_interval is not None and is_expired(out.message, time.time()):
            self._stats.expired_dropped += 1
            if journal is not None:
                journal.dropped(out)
            return
        packet_id = self._allocate_packet_id()
        out.packet_id = packet_id
        aliases = link.aliases_out
        if aliases is not None:
            sent = self._write_aliased(out, link, aliases, cache)
        else:
            if cache is None:
                data = self._encode_one(out, link.protocol_level, dup=False, now=time.time())
            else:
                data = self._encode(out, link.protocol_level, cache)
            sent = data is not None and link.write_message(data, out.qos)
        if sent:
            self.inflight[packet_id] = out
            if journal is not None:
                journal.held(self, out)
        elif journal is not None:
            journal.dropped(out)

    def _write_aliased(
        self, out: Outgoing, link: SessionLink, aliases: OutboundAliases, cache: EncodeCache | None
    ) -> bool:
        topic = out.message.topic[len(self.mountpoint) :]
        alias, known = aliases.assign(topic)
        data = self._encode_aliased(out, topic, alias, known, cache)
        if data is not None and link.write_message(data, out.qos):
            return True
        if not known:
            aliases.forget(topic)  # the client never saw this alias set
        return False

    def _encode_aliased(
        self, out: Outgoing, topic: str, alias: int, known: bool, cache: EncodeCache | None
    ) -> bytes | None:
        # Subscribers that saw the same topics in the same order hold the same aliases, so within one
        # fan-out the encoding is shared by (alias, name sent or not) like the plain one.
        message = out.message
        now = time.time()
        props = message.properties
        remaining = None
        if props is not None and props.message_expiry_interval is not None:
            remaining = remaining_expiry(message, now)
            if remaining == 0:
                self._stats.expired_dropped += 1
                return None
        qos = out.qos
        key = ("alias", alias, known, qos, out.retain, out.identifiers, self.mountpoint, remaining)
        entry = cache.get(key) if cache is not None else None
        if entry is None:
            props, expired = self._properties(out, PROTOCOL_V5, now)
            if expired:
                return None
            name = b"" if known else topic.encode()
            try:
                template = encode_aliased_publish(
                    name, alias, message.payload, qos, out.retain, 1 if qos else None, props
                )
            except ValueError:
                self._cannot_encode(topic)
                return None
            entry = (template, _after_topic(template, len(name)))
            if cache is not None:
                cache[key] = entry
        template, offset = entry
        if not qos:
            return template
        patched = bytearray(template)
        patched[offset : offset + 2] = out.packet_id.to_bytes(2, "big")
        return bytes(patched)

    def _allocate_packet_id(self) -> int:
        # Identifiers in use by in-flight messages are skipped [MQTT-2.2.1-3].
        packet_id = self._next_packet_id
        while packet_id in self.inflight:
            packet_id = packet_id % 65535 + 1
        self._next_packet_id = packet_id % 65535 + 1
        return packet_id

    def _delivered(self, out: Outgoing) -> None:
        self._stats.messages_sent += 1
        callback = out.message.on_delivered
        if callback is not None:
            callback(self.client_id)

    def _encode(self, out: Outgoing, level: int, cache: EncodeCache | None) -> bytes | None:
        message = out.message
        if cache is None:
            return self._encode_one(out, level, dup=False, now=time.time())
        props = message.properties
        remaining = None
        if props is not None and props.message_expiry_interval is not None:
            remaining = remaining_expiry(message, time.time())
            if remaining == 0:
                self._stats.expired_dropped += 1
                return None
        qos = out.qos
        key = (level, qos, out.retain, out.identifiers, self.mountpoint, remaining)
        entry = cache.get(key)
        if entry is None:
            template = self._encode_one(out, level, dup=False, now=time.time(), packet_id=1 if qos else None)
            if template is None:
                return None
            offset = _packet_id_offset(template, message.topic, self.mountpoint) if qos else 0
            entry = cache[key] = (template, offset)
        template, offset = entry
        if not qos:
            return template
        patched = bytearray(template)
        patched[offset : offset + 2] = out.packet_id.to_bytes(2, "big")
        return bytes(patched)

    def _encode_one(
        self, out: Outgoing, level: int, *, dup: bool, now: float, packet_id: int | None = None
    ) -> bytes | None:
        message = out.message
        props, expired = self._properties(out, level, now)
        if expired:
            return None
        topic = message.topic[len(self.mountpoint) :]
        try:
            return encode_publish(
                topic,
                message.payload,
                out.qos,
                out.retain,
                dup,
                packet_id if packet_id is not None else (out.packet_id if out.qos else None),
                props,
                level,
            )
        except ValueError:
            self._cannot_encode(topic)
            return None

    def _properties(self, out: Outgoing, level: int, now: float) -> tuple[Properties | None, bool]:
        """The properties of ``out`` as this client gets them, and whether the message expired."""
        message = out.message
        remaining = remaining_expiry(message, now)
        if remaining == 0:
            self._stats.expired_dropped += 1
            return None, True
        props: Properties | None = None
        if level >= PROTOCOL_V5:
            props = message.properties
            if props is not None and (props.topic_alias is not None or remaining is not None):
                props = dataclasses.replace(props, topic_alias=None, message_expiry_interval=remaining)
            if out.identifiers:
                props = dataclasses.replace(props or Properties(), subscription_identifiers=list(out.identifiers))
        return props, False

    def _cannot_encode(self, topic: str) -> None:
        # A message this client's protocol cannot carry (a field past its wire limit): skipped and
        # counted, like an expired one, so neither the fan-out nor this session's queue stalls on it.
        self._stats.delivery_failed += 1
        episodes(
            logger,
            logging.WARNING,
            ("encode", self.key),
            "message on %.200s cannot be encoded for client %s; skipped",
            topic,
            self.client_id,
        )


def _packet_id_offset(template: bytes, topic: str, mountpoint: str) -> int:
    return _after_topic(template, len(topic[len(mountpoint) :].encode()))


def _after_topic(template: bytes, topic_bytes: int) -> int:
    # Fixed header: one byte, then the remaining length as a variable byte integer [MQTT-2.2.3];
    # then the topic as a two-byte length and UTF-8 bytes; the packet id follows [MQTT-3.3.2].
    index = 1
    while template[index] & 0x80:
        index += 1
    return index + 1 + 2 + topic_bytes
