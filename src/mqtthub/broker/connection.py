"""One client connection: an :class:`asyncio.Protocol` that parses, dispatches and writes in batches.

Bytes are parsed per chunk as they arrive and the resulting packets are handled
synchronously, in order. Only a step that must wait (authentication, a cache miss
of the authorizer) leaves the fast path: the connection then stops reading its
socket, awaits that one step in a named task of the broker's task group, and
resumes with the packets that queued up behind it, so order is kept without a
task per message. The socket is paused only once something arrives behind that
step, so a CONNECT waiting for the database alone costs no pause and resume of its
socket. What a connection answers to a chunk it read (CONNACK, PUBACK,
SUBACK, …) goes to the transport with one ``writelines`` call when the chunk has
been handled; writes made from elsewhere (deliveries from other publishers,
acknowledgements after a store) are collected over the event-loop pass and
handed over together at its end.

The connection is a small state machine: ``AWAITING_CONNECT`` → ``CONNECTING``
(authenticator running) → ``CONNECTED`` → ``CLOSED``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable
from typing import TYPE_CHECKING, cast

from mqtthub.broker import packet_handlers
from mqtthub.broker.connection_state import ConnectionState
from mqtthub.broker.episodes import EpisodeLog
from mqtthub.broker.hooks import Action, Principal
from mqtthub.broker.session import Session
from mqtthub.broker.topic_aliases import OutboundAliases
from mqtthub.errors import ProtocolError
from mqtthub.mqtt.codec import PacketReader, encode
from mqtthub.mqtt.packets import PROTOCOL_V5, PROTOCOL_V311, Connack, Disconnect, Packet, Properties, Will
from mqtthub.mqtt.reason_codes import ReasonCode, connack_code_for

if TYPE_CHECKING:
    from mqtthub.broker.core import BrokerCore

logger = logging.getLogger(__name__)
episodes = EpisodeLog()

_FLUSH_THRESHOLD = 64 * 1024
"""Queued bytes at which a connection writes at once instead of at the end of the event-loop pass."""


class CertificateInfo:
    """Subject, common name and serial number of a verified TLS client certificate."""

    __slots__ = ("cn", "serial", "subject")

    def __init__(self, subject: str | None, cn: str | None, serial: int | None) -> None:
        self.subject = subject
        self.cn = cn
        self.serial = serial

    @classmethod
    def from_peercert(cls, peercert: object) -> CertificateInfo:
        """Read the fields the authenticator needs from :meth:`ssl.SSLSocket.getpeercert` output."""
        if not isinstance(peercert, dict) or not peercert:
            return NO_CERTIFICATE
        parts: list[str] = []
        cn: str | None = None
        for rdn in peercert.get("subject", ()):
            for key, value in rdn:
                parts.append(f"{key}={value}")
                if key == "commonName":
                    cn = value
        serial_text = peercert.get("serialNumber")
        serial = int(serial_text, 16) if isinstance(serial_text, str) else None
        return cls(",".join(parts) or None, cn, serial)


NO_CERTIFICATE = CertificateInfo(None, None, None)
"""What a connection without a client certificate holds (one shared instance: nothing changes it)."""


class Connection(asyncio.Protocol):
    """The broker side of one MQTT network connection (see the module docstring).

    A broker holds one per client for as long as it is connected, so it is slotted and allocates
    nothing it does not need yet: the packet backlog exists only while a step is awaited.
    """

    __slots__ = (
        "_backlog",
        "_flush_handle",
        "_loop",
        "_out",
        "_out_bytes",
        "_qos0_while_paused",
        "_read_pause_reasons",
        "_reading",
        "_waiting",
        "_write_paused",
        "acl",
        "acl_generation",
        "aliases_out",
        "certificate",
        "client_id",
        "close_reason",
        "core",
        "created_at",
        "graceful",
        "keepalive",
        "last_received",
        "listener",
        "max_packet_size_out",
        "maximum_qos",
        "peer",
        "pending_qos1",
        "pending_sink",
        "principal",
        "protocol_level",
        "reader",
        "receive_maximum",
        "retain_available",
        "send_quota",
        "session",
        "state",
        "topic_aliases",
        "transport",
        "will",
    )

    def __init__(self, core: BrokerCore, listener: str) -> None:
        """``listener`` is the listener kind reported in :class:`ConnectInfo` (``tcp``, ``tls``, ``ws``, ``wss``)."""
        config = core.config
        self.core = core
        self.listener = listener
        self.state = ConnectionState.AWAITING_CONNECT
        self.protocol_level = PROTOCOL_V311
        self.reader = PacketReader(max_packet_size=config.max_packet_size)
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.certificate = NO_CERTIFICATE
        self.session: Session | None = None
        self.principal: Principal | None = None
        self.client_id = ""
        self.keepalive = 0
        self.send_quota = config.max_inflight
        self.maximum_qos = config.maximum_qos
        self.retain_available = config.retain_available
        self.receive_maximum = config.receive_maximum
        self.max_packet_size_out: int | None = None
        self.will: Will | None = None
        self.topic_aliases: dict[int, str] | None = None
        """Inbound: aliases the client set, towards the broker (made with the first one)."""
        self.aliases_out: OutboundAliases | None = None
        """Outbound: aliases the broker sets towards a 5.0 client that allows them."""
        self.acl: dict[tuple[Action, str], bool] | None = None
        """The authorizer's answers for this connection; made with the first one."""
        self.acl_generation = 0
        """Bumped by ``invalidate`` so an answer obtained before it is not cached after it."""
        self.created_at = time.monotonic()
        self.last_received = self.created_at
        self.close_reason = "connection lost"
        self.graceful = False
        self.pending_sink = 0
        """Messages offered to the sink whose future has not resolved yet."""
        self.pending_qos1 = 0
        """QoS 1 messages among them: with QoS 2 receipts, what counts against our receive maximum."""
        self._loop = asyncio.get_running_loop()
        self._out: list[bytes] | None = None
        """Bytes for the next batched write; made by the first write after a flush (an idle connection keeps none)."""
        self._out_bytes = 0
        self._flush_handle: asyncio.Handle | None = None
        self._write_paused = False
        self._qos0_while_paused = 0
        self._backlog: deque[Packet] | None = None
        """Packets that arrived behind an awaited step (see the module docstring)."""
        self._waiting = False
        self._read_pause_reasons: tuple[str, ...] = ()
        self._reading = False
        """Inside :meth:`data_received`: writes wait for its end rather than for the end of the pass."""

    # -- asyncio.Protocol ---------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Register with the broker, which may refuse (connection limits) and close at once."""
        # Stream transports of asyncio, uvloop and our WebSocket adapter all read and write; uvloop's are not
        # subclasses of asyncio.Transport, so this is a cast rather than an isinstance check.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.peer = f"{peer[0]}:{peer[1]}"
        self.certificate = CertificateInfo.from_peercert(transport.get_extra_info("peercert"))
        if not self.core.admit(self):
            self.state = ConnectionState.CLOSED
            transport.close()

    def data_received(self, data: bytes) -> None:
        """Parse a chunk and handle the packets it completes."""
        if self.state is ConnectionState.CLOSED:
            return
        self.core.stats.bytes_received += len(data)
        try:
            packets = self.reader.feed(data)
        except ProtocolError as exc:
            self.fail(exc)
            return
        if not packets:
            return
        # Keep alive counts whole control packets, not bytes: a packet trickled in byte by byte
        # does not keep a silent client alive [MQTT-3.1.2-24].
        self.last_received = time.monotonic()
        if self._waiting:
            self._hold(packets)
            return
        # The answers to this chunk leave when it has been handled, in one write: a client waiting for its
        # CONNACK or PUBACK gets it without a callback scheduled for the end of the event-loop pass.
        self._reading = True
        try:
            self._dispatch(packets)
        finally:
            self._reading = False
        if self._out and self._flush_handle is None:  # else a flush for the end of the pass carries them
            self._flush()

    def eof_received(self) -> bool | None:
        """A half-closed socket ends the connection (closing it ourselves)."""
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        """Tell the broker; it handles the will, the session's expiry and the observer."""
        self.state = ConnectionState.CLOSED
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._backlog = None
        self.core.connection_closed(self)

    def pause_writing(self) -> None:
        """The transport buffer is above its high-water mark: hold QoS 1/2, bound QoS 0."""
        self._write_paused = True

    def resume_writing(self) -> None:
        """The transport drained: send what the session held back."""
        self._write_paused = False
        self._qos0_while_paused = 0
        if self.session is not None and self.session.link is self:
            self.session.pump()

    # -- reading ------------------------------------------------------------------------------------------

    def _dispatch(self, packets: list[Packet]) -> None:
        """Handle packets in order; those behind a step that must wait go to the backlog."""
        for index, packet in enumerate(packets):
            if self.state is ConnectionState.CLOSED:
                return
            if self._step(packet):
                self._hold(packets[index + 1 :])
                return

    def _hold(self, packets: list[Packet]) -> None:
        """Keep packets that arrived behind an awaited step, and stop reading until it is done.

        Reading stops only now, not when the step began: most steps (a CONNECT waiting for its credential) have
        nothing behind them, and pausing a socket costs a change of the poller's interest list, twice.
        """
        if not packets:
            return
        if self._backlog is None:
            self._backlog = deque(packets)
        else:
            self._backlog.extend(packets)
        self.pause_reading("waiting")

    def _step(self, packet: Packet) -> bool:
        """Handle one packet; True when it left a step running that later packets must wait for."""
        try:
            pending = packet_handlers.dispatch(self, packet)
        except ProtocolError as exc:
            self.fail(exc)
            return False
        if pending is None:
            return False
        self._waiting = True
        if not isinstance(pending, asyncio.Future):  # a future needs no task to be waited for
            pending = self.core.spawn(_awaited(pending), name=f"mqtt-step:{self.peer}")
        pending.add_done_callback(self._step_done)
        return True

    def _drain(self) -> None:
        backlog = self._backlog
        while backlog and not self._waiting:
            if self.state is ConnectionState.CLOSED:
                break
            self._step(backlog.popleft())
        if not self._waiting or self.state is ConnectionState.CLOSED:
            self._backlog = None

    def _step_done(self, step: asyncio.Future[None]) -> None:
        """An awaited step is over: go on with the packets behind it."""
        if step.cancelled():
            self._waiting = False  # the broker is stopping
            return
        error = step.exception()
        if isinstance(error, ProtocolError):
            self.fail(error)
        elif error is not None:
            logger.error("error handling a packet from %s (%s)", self.client_id or "-", self.peer, exc_info=error)
            self.close(ReasonCode.UNSPECIFIED_ERROR, "internal error")
        self._waiting = False
        # The wait was ours, not the client's: its keep alive starts afresh.
        self.last_received = time.monotonic()
        if self.state is not ConnectionState.CLOSED:
            self._drain()
        if not (self._waiting and self._backlog):
            self.resume_reading("waiting")  # else still paused: packets wait behind the next step

    def pause_reading(self, reason: str) -> None:
        """Stop reading the socket until every reason given here has been lifted."""
        transport = self.transport
        if not self._read_pause_reasons and transport is not None and not transport.is_closing():
            transport.pause_reading()
        if reason not in self._read_pause_reasons:
            self._read_pause_reasons += (reason,)

    def resume_reading(self, reason: str) -> None:
        """Lift one reason for not reading."""
        if reason not in self._read_pause_reasons:
            return
        self._read_pause_reasons = tuple(other for other in self._read_pause_reasons if other != reason)
        transport = self.transport
        if not self._read_pause_reasons and transport is not None and not transport.is_closing():
            # Time spent not reading is ours, not the client's: its keep alive starts afresh.
            self.last_received = time.monotonic()
            transport.resume_reading()

    @property
    def reading_paused(self) -> bool:
        """Whether the broker has stopped reading this socket or waits for a step of its own (the keep alive is
        not checked meanwhile)."""
        return self._waiting or bool(self._read_pause_reasons)

    # -- writing ------------------------------------------------------------------------------------------

    @property
    def write_paused(self) -> bool:
        """Whether the transport is above its high-water mark."""
        return self._write_paused

    def write(self, data: bytes) -> None:
        """Queue bytes for the batched write (see the module docstring)."""
        if self.state is ConnectionState.CLOSED:
            return
        out = self._out
        if out is None:
            self._out = [data]
        else:
            out.append(data)
        self._out_bytes += len(data)
        if self._out_bytes >= _FLUSH_THRESHOLD:
            # Hand a large batch to the transport now: uvloop runs many reads before any
            # call_soon callback, so waiting for the end of the pass would hold megabytes here,
            # out of sight of the transport's flow control.
            if self._flush_handle is not None:
                self._flush_handle.cancel()
            self._flush()
        elif self._flush_handle is None and not self._reading:
            self._flush_handle = self._loop.call_soon(self._flush)

    def write_packet(self, packet: Packet) -> None:
        """Encode a control packet at the client's protocol level and queue it."""
        self.write(encode(packet, self.protocol_level))

    def write_message(self, data: bytes, qos: int) -> bool:
        """Queue an encoded PUBLISH unless the client cannot take it.

        A packet above the client's maximum packet size is dropped [MQTT-3.1.2-25]; a
        QoS 0 message beyond ``max_outbound_qos0`` while the socket is not draining is
        dropped (overflow policy: drop newest).
        """
        stats = self.core.stats
        if self.max_packet_size_out is not None and len(data) > self.max_packet_size_out:
            stats.oversize_dropped += 1
            episodes(
                logger,
                logging.INFO,
                ("large", self),
                "client %s: message of %d bytes above its maximum packet size dropped",
                self.client_id,
                len(data),
            )
            return False
        if self._write_paused and qos == 0:
            if self._qos0_while_paused >= self.core.config.max_outbound_qos0:
                stats.qos0_dropped += 1
                episodes(
                    logger,
                    logging.WARNING,
                    ("qos0", self),
                    "client %s reads too slowly: dropping QoS 0 messages",
                    self.client_id,
                )
                return False
            self._qos0_while_paused += 1
        self.write(data)
        return True

    def write_pubrel(self, packet_id: int) -> None:
        """Send PUBREL (no reason code: success) [MQTT-3.6]."""
        self.write(bytes((0x62, 2)) + packet_id.to_bytes(2, "big"))

    def write_ack(self, first_byte: int, packet_id: int, reason_code: int = 0) -> None:
        """Send PUBACK/PUBREC/PUBCOMP; the reason code only goes to 5.0 clients [MQTT-3.4.2.1]."""
        if reason_code and self.protocol_level == PROTOCOL_V5:
            self.write(bytes((first_byte, 3)) + packet_id.to_bytes(2, "big") + bytes((reason_code,)))
        else:
            self.write(bytes((first_byte, 2)) + packet_id.to_bytes(2, "big"))

    def _flush(self) -> None:
        self._flush_handle = None
        out = self._out
        transport = self.transport
        if not out or transport is None or transport.is_closing():
            return
        self._out = None
        self.core.stats.bytes_sent += self._out_bytes
        self._out_bytes = 0
        transport.writelines(out)

    # -- closing ------------------------------------------------------------------------------------------

    def fail(self, exc: ProtocolError) -> None:
        """Close after a protocol violation, telling a 5.0 client why [MQTT-4.13].

        A refused CONNECT that names its CONNACK layout (``exc.connack_level``: an unsupported protocol
        level or name, or any error in a 5.0 CONNECT) is answered with a refusing CONNACK first
        [MQTT-3.1.2-2] [MQTT-3.1.4-1].
        """
        self.core.stats.protocol_errors += 1
        logger.warning("protocol error from %s (%s): %s", self.client_id or "-", self.peer, exc.message)
        level = exc.connack_level
        if level is not None and self.state is ConnectionState.AWAITING_CONNECT:
            props = Properties(reason_string=exc.message) if level == PROTOCOL_V5 else None
            self.write(encode(Connack(False, connack_code_for(exc.reason_code, level), props), level))
        self.close(exc.reason_code, f"protocol error: {exc.message}")

    def close(self, reason_code: int | None, reason: str, *, graceful: bool = False) -> None:
        """Close the connection; a connected 5.0 client first gets DISCONNECT with ``reason_code``."""
        if self.state is ConnectionState.CLOSED:
            return
        self.close_reason = reason
        self.graceful = graceful
        if (
            reason_code is not None
            and self.protocol_level == PROTOCOL_V5
            and self.state is ConnectionState.CONNECTED
            and reason_code >= 0x80
        ):
            self.write_packet(Disconnect(reason_code, Properties(reason_string=reason)))  # [MQTT-3.14.2.2.3]
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        self._flush()  # what is queued goes before the close, also what a chunk being read wrote
        self._backlog = None
        self.state = ConnectionState.CLOSED
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.close()


async def _awaited(pending: Awaitable[None]) -> None:
    await pending
