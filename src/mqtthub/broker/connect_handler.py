"""CONNECT → CONNACK [MQTT-3.1.4], [MQTT-3.2]: authentication, session set-up, negotiated limits."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable
from functools import partial
from typing import TYPE_CHECKING

from mqtthub.broker.connection_state import ConnectionState
from mqtthub.broker.episodes import EpisodeLog
from mqtthub.broker.hooks import ConnectInfo, Principal
from mqtthub.broker.topic_aliases import OutboundAliases
from mqtthub.errors import AuthenticationRefused, ProtocolError
from mqtthub.mqtt.packets import PROTOCOL_V5, Connack, Connect, Properties
from mqtthub.mqtt.primitives import is_utf8
from mqtthub.mqtt.reason_codes import ReasonCode, connack_code_for
from mqtthub.mqtt.topics import fits_under, validate_topic_name

if TYPE_CHECKING:
    from mqtthub.broker.connection import Connection

logger = logging.getLogger(__name__)
episodes = EpisodeLog()


def refuse(conn: Connection, reason_code: int, why: str) -> None:
    """Send a refusing CONNACK (code mapped to the client's level) and close [MQTT-3.2.2-5]."""
    address = conn.peer.rsplit(":", 1)[0]
    episodes(
        logger,
        logging.INFO,
        (address, reason_code),
        "connect refused: client %s (%s) code 0x%02X: %s",
        conn.client_id or "-",
        conn.peer,
        reason_code,
        why,
    )
    refused = conn.core.stats.connects_refused
    refused[reason_code] = refused.get(reason_code, 0) + 1
    props = Properties(reason_string=why) if conn.protocol_level == PROTOCOL_V5 else None  # [MQTT-3.2.2.3.16]
    conn.write_packet(Connack(False, connack_code_for(reason_code, conn.protocol_level), props))
    conn.close(None, f"connect refused: {why}")


def handle_connect(conn: Connection, packet: Connect) -> Awaitable[None] | None:
    """Authenticate a CONNECT, attach its session and answer CONNACK.

    A client the authenticator remembers (:meth:`Authenticator.admit` answers with a principal) is
    answered at once, in this event-loop pass; otherwise the returned awaitable finishes the CONNECT
    once the authenticator has answered (the connection reads nothing meanwhile). An answer to come as
    a future (a credential looked up in a batch) is followed by a callback, with no task of its own: in a
    reconnecting fleet thousands of CONNECTs wait at once, and a task for each is a large part of their cost.
    """
    info = _connect_info(conn, packet)
    if info is None:
        return None
    try:
        admitted = conn.core.authenticator.admit(info)
    except Exception as exc:
        _authenticator_failed(exc, "authenticator failed for client %s (%s)", info)
        refuse(conn, ReasonCode.SERVER_UNAVAILABLE, "authenticator failed")
        return None
    if isinstance(admitted, Principal):
        _accept(conn, packet, admitted)
        return None
    if isinstance(admitted, asyncio.Future):
        step: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        admitted.add_done_callback(partial(_answered, conn, packet, info, step))
        return step
    return _authenticate(conn, packet, info, admitted)


def _connect_info(conn: Connection, packet: Connect) -> ConnectInfo | None:
    """The checks that need no authenticator; the authenticator's question, or None if refused."""
    level = packet.protocol_level
    conn.protocol_level = level
    conn.reader.protocol_level = level
    client_id = packet.client_id
    if not client_id:
        if not packet.clean_start and level != PROTOCOL_V5:
            refuse(conn, ReasonCode.CLIENT_IDENTIFIER_NOT_VALID, "empty client id with persistent session")
            return None
        client_id = f"mqtthub-{uuid.uuid4().hex}"  # [MQTT-3.1.3-6]
    conn.client_id = client_id
    if packet.properties is not None and packet.properties.authentication_method is not None:
        refuse(conn, ReasonCode.BAD_AUTHENTICATION_METHOD, "enhanced authentication is not supported")
        return None
    return ConnectInfo(
        client_id=client_id,
        username=packet.username,
        password=packet.password,
        protocol_level=level,
        listener=conn.listener,
        peer=conn.peer,
        certificate_subject=conn.certificate.subject,
        certificate_cn=conn.certificate.cn,
        certificate_serial=conn.certificate.serial,
    )


async def _authenticate(conn: Connection, packet: Connect, info: ConnectInfo, pending: Awaitable[Principal]) -> None:
    try:
        principal = await pending
    except Exception as exc:
        _decided(conn, packet, info, exc)
    else:
        _decided(conn, packet, info, principal)


def _answered(
    conn: Connection, packet: Connect, info: ConnectInfo, step: asyncio.Future[None], answer: asyncio.Future[Principal]
) -> None:
    """The authenticator's future is done: finish the CONNECT, then the connection's step."""
    try:
        if answer.cancelled():
            _decided(conn, packet, info, ConnectionAbortedError("the authenticator's answer was cancelled"))
        elif (error := answer.exception()) is not None:
            _decided(conn, packet, info, error if isinstance(error, Exception) else RuntimeError(repr(error)))
        else:
            _decided(conn, packet, info, answer.result())
    except Exception as exc:
        step.set_exception(exc)
    else:
        step.set_result(None)


def _decided(conn: Connection, packet: Connect, info: ConnectInfo, answer: Principal | Exception) -> None:
    if isinstance(answer, AuthenticationRefused):
        conn.core.stats.auth_refused += 1
        refuse(conn, answer.reason_code, answer.message)
    elif isinstance(answer, Exception):
        _authenticator_failed(answer, "authenticator failed for client %s (%s)", info)
        refuse(conn, ReasonCode.SERVER_UNAVAILABLE, "authenticator failed")
    elif conn.state is not ConnectionState.CLOSED:
        _accept(conn, packet, answer)


def _accept(conn: Connection, packet: Connect, principal: Principal) -> None:
    """Will checks, session, negotiated limits, CONNACK [MQTT-3.2]."""
    core = conn.core
    config = core.config
    client_id = conn.client_id
    level = conn.protocol_level
    v5 = level == PROTOCOL_V5
    assigned = None if packet.client_id else client_id
    if core.held_by_another(client_id, principal):
        refuse(conn, ReasonCode.CLIENT_IDENTIFIER_NOT_VALID, "client id in use by another identity")
        return
    will = packet.will
    if will is not None:
        try:
            validate_topic_name(will.topic)
        except ProtocolError as exc:
            refuse(conn, ReasonCode.TOPIC_NAME_INVALID, exc.message)
            return
        if not fits_under(principal.mountpoint, will.topic):
            core.stats.topic_too_long += 1
            refuse(conn, ReasonCode.TOPIC_NAME_INVALID, "will topic too long for the namespace [MQTT-4.7.3-3]")
            return
        will_props = will.properties
        if will_props is not None and will_props.payload_format_indicator == 1 and not is_utf8(will.payload):
            core.stats.payload_format_invalid += 1
            refuse(conn, ReasonCode.PAYLOAD_FORMAT_INVALID, "will payload marked UTF-8 is not [MQTT-3.1.3.2.3]")
            return
        if will.qos > config.maximum_qos:
            refuse(conn, ReasonCode.QOS_NOT_SUPPORTED, "will QoS above maximum")  # [MQTT-3.2.2-12]
            return
        if will.retain and not config.retain_available:
            refuse(conn, ReasonCode.RETAIN_NOT_SUPPORTED, "will retain not available")  # [MQTT-3.2.2-13]
            return
    props = packet.properties or Properties()
    requested_expiry = props.session_expiry_interval or 0
    if v5:
        expiry = min(requested_expiry, config.max_session_expiry)
    else:
        expiry = 0 if packet.clean_start else config.max_session_expiry
    conn.send_quota = min(props.receive_maximum or 65535, config.max_inflight)
    conn.max_packet_size_out = props.maximum_packet_size
    alias_maximum = min(props.topic_alias_maximum or 0, config.max_outbound_topic_aliases)
    if v5 and alias_maximum:
        conn.aliases_out = OutboundAliases(alias_maximum)  # [MQTT-3.3.2-9]
    keepalive = packet.keep_alive
    server_keepalive: int | None = None
    if v5 and (keepalive == 0 or keepalive > config.max_keepalive):
        keepalive = server_keepalive = config.max_keepalive  # [MQTT-3.2.2-21]
    conn.keepalive = keepalive
    conn.principal = principal
    conn.will = will
    session, present = core.attach(conn, client_id, principal, clean_start=packet.clean_start, expiry=expiry)
    conn.session = session
    conn.state = ConnectionState.CONNECTED
    connack_props: Properties | None = None
    if v5:
        connack_props = Properties(
            receive_maximum=config.receive_maximum,
            maximum_packet_size=config.max_packet_size,
            topic_alias_maximum=config.max_topic_aliases,
            assigned_client_identifier=assigned,
            server_keep_alive=server_keepalive,
            maximum_qos=config.maximum_qos if config.maximum_qos < 2 else None,
            retain_available=None if config.retain_available else 0,
            wildcard_subscription_available=1,
            subscription_identifier_available=1,
            shared_subscription_available=1,
        )
        if requested_expiry != expiry:
            connack_props.session_expiry_interval = expiry  # [MQTT-3.2.2.3.2]
    conn.write_packet(Connack(present, ReasonCode.SUCCESS, connack_props))
    logger.debug("client %s connected from %s (level %d, %s)", client_id, conn.peer, level, principal.id)
    core.connected(conn)
    session.resume()


def _authenticator_failed(exc: Exception, message: str, info: ConnectInfo) -> None:
    """Log a failing authenticator once per episode and kind of error, with the traceback of the first.

    While its database is down every CONNECT of a reconnecting fleet fails the same way: one line with a count
    says it, a traceback per CONNECT would bury everything else.
    """
    episodes(
        logger, logging.ERROR, ("authenticator", type(exc).__name__), message, info.client_id, info.peer, exc_info=True
    )
