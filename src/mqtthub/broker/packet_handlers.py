"""What the broker does with each packet a connected client sends [MQTT-3].

:func:`dispatch` returns ``None`` when a packet was handled synchronously (the
common case), or an awaitable when handling must wait (authentication, an
authorizer cache miss); the connection then awaits it before the next packet.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable
from functools import partial
from typing import TYPE_CHECKING, cast

from mqtthub.broker import connect_handler
from mqtthub.broker.connection_state import ConnectionState
from mqtthub.broker.episodes import EpisodeLog
from mqtthub.broker.hooks import Action, BrokerMessage
from mqtthub.broker.session import Outgoing, Session
from mqtthub.broker.subscriptions import Subscription
from mqtthub.errors import ProtocolError
from mqtthub.mqtt.packets import (
    PROTOCOL_V5,
    Connect,
    Disconnect,
    Packet,
    Pingreq,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Unsuback,
    Unsubscribe,
)
from mqtthub.mqtt.primitives import is_utf8
from mqtthub.mqtt.reason_codes import ReasonCode
from mqtthub.mqtt.topics import fits_under, parse_shared, validate_topic_name

if TYPE_CHECKING:
    from mqtthub.broker.connection import Connection

logger = logging.getLogger(__name__)
episodes = EpisodeLog()
"""Repeated refusals and failures are logged once per episode (see :mod:`mqtthub.broker.episodes`)."""

_PUBLISH = Action.PUBLISH
PUBACK = 0x40
PUBREC = 0x50
PUBCOMP = 0x70
_PINGRESP = b"\xd0\x00"


def dispatch(conn: Connection, packet: Packet) -> Awaitable[None] | None:
    """Handle one packet from ``conn``; see the module docstring for the return value."""
    kind = type(packet)
    if conn.state is not ConnectionState.CONNECTED:
        if kind is Connect and conn.state is ConnectionState.AWAITING_CONNECT:
            conn.state = ConnectionState.CONNECTING
            return connect_handler.handle_connect(conn, cast(Connect, packet))
        raise ProtocolError(f"{kind.__name__} before CONNECT completed [MQTT-3.1.0-1]")
    # The kind is known from ``type(packet)``: the casts below cost nothing, where an isinstance check per
    # packet would be paid on every PUBLISH and PUBACK.
    if kind is Publish:
        return on_publish(conn, cast(Publish, packet))
    if kind is Puback or kind is Pubcomp:
        session = conn.session
        assert session is not None
        session.acknowledged(cast("Puback | Pubcomp", packet).packet_id)
        return None
    if kind is Pubrec:
        on_pubrec(conn, cast(Pubrec, packet))
        return None
    if kind is Pubrel:
        on_pubrel(conn, cast(Pubrel, packet))
        return None
    if kind is Pingreq:
        conn.write(_PINGRESP)
        return None
    if kind is Subscribe:
        return on_subscribe(conn, cast(Subscribe, packet))
    if kind is Unsubscribe:
        on_unsubscribe(conn, cast(Unsubscribe, packet))
        return None
    if kind is Disconnect:
        on_disconnect(conn, cast(Disconnect, packet))
        return None
    if kind is Connect:
        raise ProtocolError("second CONNECT [MQTT-3.1.0-2]")
    raise ProtocolError(f"{kind.__name__} is not sent by clients")


def on_pubrec(conn: Connection, packet: Pubrec) -> None:
    """PUBREC for a QoS 2 message to the client: answer PUBREL [MQTT-4.3.3]."""
    assert conn.session is not None
    if conn.session.received(packet.packet_id, packet.reason_code):
        conn.write_pubrel(packet.packet_id)
    elif packet.reason_code < 0x80 and conn.protocol_level == PROTOCOL_V5:
        conn.write_packet(Pubrel(packet.packet_id, ReasonCode.PACKET_IDENTIFIER_NOT_FOUND))


def on_pubrel(conn: Connection, packet: Pubrel) -> None:
    """PUBREL for a QoS 2 message from the client: forget its id, answer PUBCOMP [MQTT-4.3.3-11]."""
    assert conn.session is not None
    session = conn.session
    if session.release_qos2(packet.packet_id):
        session.changed()
        acknowledge_stored(conn, PUBCOMP, packet.packet_id)
    else:
        conn.write_ack(PUBCOMP, packet.packet_id, ReasonCode.PACKET_IDENTIFIER_NOT_FOUND)


def on_publish(conn: Connection, packet: Publish) -> Awaitable[None] | None:
    """PUBLISH from the client [MQTT-3.3.4]: resolve the alias, check limits, authorize, accept."""
    topic = packet.topic
    qos = packet.qos
    props = packet.properties
    if props is not None and props.topic_alias is not None:
        topic = _resolve_alias(conn, topic, props.topic_alias)
    if qos:
        if qos > conn.maximum_qos:
            raise ProtocolError(f"QoS {qos} above the maximum [MQTT-3.2.2-11]", reason_code=0x9B)
        session = conn.session
        assert session is not None
        if qos == 2 and packet.packet_id in session.inbound_qos2:
            # A re-sent QoS 2 PUBLISH already accepted: acknowledge again, do not route twice [MQTT-4.3.3-10].
            conn.write_ack(PUBREC, packet.packet_id or 0)
            return None
        if qos == 1:
            packet_id = packet.packet_id or 0
            if not packet.dup:
                session.forget_qos1(packet_id)  # a new message: the id's last one was acknowledged
            elif (outcome := session.inbound_qos1.get(packet_id)) is not None:
                _acknowledge_resent(conn, packet_id, outcome)
                return None
        if conn.protocol_level == PROTOCOL_V5 and conn.pending_qos1 + len(session.inbound_qos2) >= conn.receive_maximum:
            raise ProtocolError("receive maximum exceeded [MQTT-3.3.4-9]", reason_code=0x93)
    if packet.retain and not conn.retain_available:
        raise ProtocolError("retain not available [MQTT-3.3.1-9]", reason_code=0x9A)
    acl = conn.acl
    allowed = acl.get((_PUBLISH, topic)) if acl is not None else None
    if allowed is None:
        # Topics in the authorization cache were validated when they entered it.
        validate_topic_name(topic)
        principal = conn.principal
        if principal is not None and not fits_under(principal.mountpoint, topic):
            conn.core.stats.topic_too_long += 1
            episodes(
                logger,
                logging.INFO,
                ("long", conn.client_id),
                "publish refused: client %s topic too long for its namespace",
                conn.client_id,
            )
            refuse_publish(conn, packet, ReasonCode.TOPIC_NAME_INVALID)
            return None
        return _authorize_then_accept(conn, packet, topic)
    accept_publish(conn, packet, topic, allowed)
    return None


def _resolve_alias(conn: Connection, topic: str, alias: int) -> str:
    if not 0 < alias <= conn.core.config.max_topic_aliases:
        raise ProtocolError(f"topic alias {alias} out of range [MQTT-3.3.2-9]", reason_code=0x94)
    aliases = conn.topic_aliases
    if topic:
        if aliases is None:
            aliases = conn.topic_aliases = {}
        aliases[alias] = topic
        return topic
    known = aliases.get(alias) if aliases is not None else None
    if known is None:
        raise ProtocolError(f"unknown topic alias {alias} [MQTT-3.3.4-7]")
    return known


async def authorized(conn: Connection, action: Action, topic: str) -> bool:
    """Ask the authorizer (answers cached per connection); failures deny."""
    key = (action, topic)
    acl = conn.acl
    cached = acl.get(key) if acl is not None else None
    if cached is not None:
        return cached
    principal = conn.principal
    assert principal is not None
    generation = conn.acl_generation
    if action is Action.PUBLISH and topic.startswith("$"):
        # Clients do not publish into the broker's own "$" topics [MQTT-4.7.2-1].
        allowed = False
    else:
        try:
            allowed = bool(await conn.core.authorizer.authorize(principal, action, topic))
        except Exception:
            logger.exception("authorizer failed for %s %s %s", principal.id, action.value, topic)
            return False
    if generation != conn.acl_generation or action is Action.RETAINED:
        # Invalidated while the authorizer ran: use the answer once. Retained reads are asked once per
        # message on SUBSCRIBE and not again: caching them would only push publish answers out.
        return allowed
    acl = conn.acl
    if acl is None:
        acl = conn.acl = {}
    elif len(acl) >= conn.core.config.max_acl_cache_entries:
        acl.clear()
    acl[key] = allowed
    return allowed


async def _authorize_then_accept(conn: Connection, packet: Publish, topic: str) -> None:
    allowed = await authorized(conn, Action.PUBLISH, topic)
    accept_publish(conn, packet, topic, allowed)


def accept_publish(conn: Connection, packet: Publish, topic: str, allowed: bool) -> None:
    """Route an authorized PUBLISH through the sink, or refuse it [MQTT-3.3.5]."""
    core = conn.core
    qos = packet.qos
    packet_id = packet.packet_id or 0
    session = conn.session
    if session is None:
        return  # taken over or closed while the authorizer ran
    if not allowed:
        core.stats.publish_denied += 1
        episodes(
            logger,
            logging.INFO,
            ("denied", conn.client_id),
            "publish denied: client %s topic %.200s",
            conn.client_id,
            topic,
        )
        refuse_publish(conn, packet, ReasonCode.NOT_AUTHORIZED)
        return
    props = packet.properties
    if props is not None:
        if props.payload_format_indicator == 1 and not is_utf8(packet.payload):
            # Checked only when the publisher says UTF-8, so unmarked payloads cost nothing [MQTT-3.3.2.3.2].
            core.stats.payload_format_invalid += 1
            episodes(
                logger,
                logging.INFO,
                ("utf8", conn.client_id),
                "publish refused: client %s marked a payload UTF-8 that is not",
                conn.client_id,
            )
            refuse_publish(conn, packet, ReasonCode.PAYLOAD_FORMAT_INVALID)
            return
        if props.topic_alias is not None:
            props = dataclasses.replace(props, topic_alias=None)  # per connection, never forwarded [MQTT-3.3.2-7]
    mountpoint = session.mountpoint
    message = BrokerMessage(
        mountpoint + topic if mountpoint else topic,
        packet.payload,
        qos,
        packet.retain,
        props,
        conn.client_id,
        conn.principal,
        time.time(),
    )
    core.stats.messages_received += 1
    if qos == 2:
        session.receive_qos2(packet_id)
        session.changed()
    sink = core.sink
    future = sink.offer(message) if sink is not None else None
    if future is None or qos == 0:
        _route(conn, message, session, packet_id)
        return
    _hold_ack(conn, qos)
    if qos == 1:
        session.remember_qos1(
            packet_id, future, limit=max(core.config.max_stored_qos1_ids, core.config.receive_maximum)
        )
    future.add_done_callback(partial(_sink_done, conn, message, packet_id))


def _acknowledge_resent(conn: Connection, packet_id: int, outcome: asyncio.Future[int]) -> None:
    """A QoS 1 re-send (DUP=1) of a message the sink already has: answer with its outcome, store it once.

    Its first copy may still be waiting for the store (sent on a connection that has since
    dropped): the acknowledgement then waits for the same outcome.
    """
    conn.core.stats.qos1_duplicates += 1
    if outcome.done():
        _resent_done(conn, packet_id, outcome, held=False)
        return
    _hold_ack(conn, 1)
    outcome.add_done_callback(partial(_resent_done, conn, packet_id, held=True))


def _resent_done(conn: Connection, packet_id: int, outcome: asyncio.Future[int], *, held: bool) -> None:
    if held:
        _release_ack(conn, 1)
    if outcome.cancelled() or outcome.exception() is not None:
        conn.close(ReasonCode.SERVER_BUSY, "message store unavailable")
        return
    acknowledge_stored(conn, PUBACK, packet_id, outcome.result())


def _route(
    conn: Connection, message: BrokerMessage, session: Session | None, packet_id: int, reason_code: int = 0
) -> None:
    """Route an accepted PUBLISH, then acknowledge it; held back while it left a client's queue backlogged.

    See :mod:`mqtthub.broker.session`: the publisher is slowed to the pace of the client it feeds.
    """
    core = conn.core
    backlogged = core.route(message, session)
    qos = message.qos
    if not qos:
        return
    first_byte = PUBACK if qos == 1 else PUBREC
    if backlogged is None:
        acknowledge_stored(conn, first_byte, packet_id, reason_code)
        return
    _hold_ack(conn, qos)
    core.hold(backlogged, partial(_held_done, conn, qos, first_byte, packet_id, reason_code))


def _held_done(conn: Connection, qos: int, first_byte: int, packet_id: int, reason_code: int) -> None:
    """The backlog that held an acknowledgement was worked down: send it once the state it changed is stored."""
    _release_ack(conn, qos)
    acknowledge_stored(conn, first_byte, packet_id, reason_code)


def _hold_ack(conn: Connection, qos: int) -> None:
    conn.pending_sink += 1
    if qos == 1:
        conn.pending_qos1 += 1
    if conn.pending_sink >= conn.core.config.receive_maximum and conn.protocol_level != PROTOCOL_V5:
        # 3.1.1 has no receive maximum: a publisher that outruns the sink (or the state store) is slowed
        # down. A 5.0 client is held to the receive maximum it was given, so the socket stays open to see
        # (and answer with DISCONNECT 0x93) a PUBLISH beyond it [MQTT-3.3.4-9].
        conn.pause_reading("sink")


def _release_ack(conn: Connection, qos: int) -> None:
    conn.pending_sink -= 1
    if qos == 1:
        conn.pending_qos1 -= 1
    if conn.pending_sink < conn.core.config.receive_maximum:
        conn.resume_reading("sink")


def acknowledge_stored(conn: Connection, first_byte: int, packet_id: int, reason_code: int = 0) -> None:
    """Send PUBACK/PUBREC/PUBCOMP once the broker state the packet changed is stored (``sync`` persistence).

    Without persistence, or in ``periodic`` mode, or when nothing is waiting to be written, at once.
    """
    journal = conn.core.journal
    barrier = journal.barrier() if journal is not None else None
    if barrier is None:
        conn.write_ack(first_byte, packet_id, reason_code)
        return
    qos = 1 if first_byte == PUBACK else 2
    _hold_ack(conn, qos)
    barrier.add_done_callback(partial(_stored, conn, qos, first_byte, packet_id, reason_code))


def _stored(conn: Connection, qos: int, first_byte: int, packet_id: int, reason_code: int, _: object) -> None:
    _release_ack(conn, qos)
    conn.write_ack(first_byte, packet_id, reason_code)


def refuse_publish(conn: Connection, packet: Publish, reason_code: int) -> None:
    """Do not route a PUBLISH; a 5.0 client learns why in its PUBACK/PUBREC [MQTT-3.3.4], QoS 0 is dropped.

    A 3.1.1 client gets a plain acknowledgement (its protocol has no refusal), and at QoS 2 its
    packet id is remembered so the PUBREL that follows completes normally [MQTT-4.3.3].
    """
    qos = packet.qos
    packet_id = packet.packet_id or 0
    if qos == 1:
        conn.write_ack(PUBACK, packet_id, reason_code)
    elif qos == 2:
        session = conn.session
        if session is not None and conn.protocol_level != PROTOCOL_V5:
            session.receive_qos2(packet_id)
            session.changed()
        conn.write_ack(PUBREC, packet_id, reason_code)


def _sink_done(conn: Connection, message: BrokerMessage, packet_id: int, future: asyncio.Future[int]) -> None:
    _release_ack(conn, message.qos)
    session = conn.session
    if future.cancelled() or future.exception() is not None:
        # The sink could not take the message (its store is down, or it is stopping). An acknowledgement
        # would be a promise the hub cannot keep, and a 5.0 error code would make the client drop the
        # message: close without one, so the client sends it again after reconnecting [MQTT-4.4.0-1].
        error = None if future.cancelled() else future.exception()
        conn.core.stats.sink_unavailable += 1
        if session is not None and message.qos == 2:
            session.release_qos2(packet_id)
            session.changed()
        elif session is not None:
            session.forget_qos1(packet_id, future)
        episodes(
            logger,
            logging.WARNING,
            "sink",
            "message sink unavailable for %.200s; disconnecting %s: %r",
            message.topic,
            conn.client_id,
            error,
        )
        conn.close(ReasonCode.SERVER_BUSY, "message store unavailable")
        return
    code = future.result()
    if code < 0x80:
        _route(conn, message, session, packet_id, code)
        return
    conn.core.stats.sink_rejected += 1
    if message.qos == 2 and session is not None and conn.protocol_level == PROTOCOL_V5:
        session.release_qos2(packet_id)
        session.changed()
    acknowledge_stored(conn, PUBACK if message.qos == 1 else PUBREC, packet_id, code)


async def on_subscribe(conn: Connection, packet: Subscribe) -> None:
    """SUBSCRIBE [MQTT-3.8.4]: authorize each filter, register, SUBACK, then retained messages."""
    core = conn.core
    session = conn.session
    if session is None:
        return  # taken over or closed before this packet's turn came
    v5 = conn.protocol_level == PROTOCOL_V5
    props = packet.properties
    identifier = props.subscription_identifiers[0] if props is not None and props.subscription_identifiers else None
    codes: list[int] = []
    retained: list[Outgoing] = []
    added: list[str] = []
    for request in packet.subscriptions:
        try:
            group, plain = parse_shared(request.topic_filter)
        except ProtocolError as exc:
            codes.append(exc.reason_code if v5 else 0x80)
            continue
        if group is not None and request.no_local:
            raise ProtocolError("no local on a shared subscription [MQTT-3.8.3-4]")
        allowed = await authorized(conn, Action.SUBSCRIBE, plain)
        if conn.session is not session:
            return  # the session moved to another connection (or ended) while the authorizer ran
        if not allowed:
            core.stats.subscribe_denied += 1
            logger.info("subscribe denied: client %s filter %s", conn.client_id, request.topic_filter)
            codes.append(ReasonCode.NOT_AUTHORIZED if v5 else 0x80)
            continue
        qos = min(request.qos, core.config.maximum_qos)
        mounted = session.mountpoint + plain
        subscription = Subscription(
            session,
            mounted,
            qos,
            request.no_local,
            request.retain_as_published,
            request.retain_handling,
            identifier,
            group,
        )
        existed = core.subscribe(session, subscription)
        if not existed and group is None:
            added.append(mounted)
        codes.append(qos)
        send_retained = request.retain_handling == 0 or (request.retain_handling == 1 and not existed)
        if group is None and send_retained:
            ids = (identifier,) if identifier else ()
            mount = len(session.mountpoint)
            for message in core.retained.matching(mounted):
                if await authorized(conn, Action.RETAINED, message.topic[mount:]):
                    retained.append(Outgoing(message, min(message.qos, qos), True, ids))
            if conn.session is not session:
                return
    journal = core.journal
    barrier = journal.barrier() if journal is not None else None
    if barrier is not None:
        await barrier  # sync persistence: a granted subscription is stored before SUBACK
        if conn.session is not session:
            return
    conn.write_packet(Suback(packet.packet_id, codes))
    for out in retained:
        session.deliver(out)
    observer = core.observer
    if observer is not None:
        for topic_filter in added:
            try:
                observer.client_subscribed(conn.client_id, session.principal, topic_filter)
            except Exception:
                logger.exception("broker observer failed")


def on_unsubscribe(conn: Connection, packet: Unsubscribe) -> None:
    """UNSUBSCRIBE [MQTT-3.10.4]: remove each filter, UNSUBACK with a code per filter in 5.0."""
    session = conn.session
    assert session is not None
    codes: list[int] = []
    for topic_filter in packet.topic_filters:
        try:
            group, plain = parse_shared(topic_filter)
        except ProtocolError as exc:
            codes.append(exc.reason_code)
            continue
        removed = conn.core.unsubscribe(session, session.mountpoint + plain, group)
        codes.append(ReasonCode.SUCCESS if removed else ReasonCode.NO_SUBSCRIPTION_EXISTED)
    journal = conn.core.journal
    barrier = journal.barrier() if journal is not None else None
    unsuback = Unsuback(packet.packet_id, codes)
    if barrier is None:
        conn.write_packet(unsuback)
    else:
        barrier.add_done_callback(lambda _: conn.write_packet(unsuback))


def on_disconnect(conn: Connection, packet: Disconnect) -> None:
    """DISCONNECT from the client [MQTT-3.14.4]: no will unless 0x04 (5.0), session expiry may change."""
    session = conn.session
    assert session is not None
    props = packet.properties
    if props is not None and props.session_expiry_interval is not None:
        if session.expiry_interval == 0 and props.session_expiry_interval:
            raise ProtocolError("session expiry set on DISCONNECT after 0 at CONNECT [MQTT-3.14.2-2]")
        session.expiry_interval = min(props.session_expiry_interval, conn.core.config.max_session_expiry)
    if packet.reason_code != ReasonCode.DISCONNECT_WITH_WILL_MESSAGE:
        conn.will = None  # [MQTT-3.14.4-3]
    conn.close(None, f"client disconnected (0x{packet.reason_code:02X})", graceful=packet.reason_code == 0)
