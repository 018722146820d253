"""Listeners: TCP, TLS (optionally with client certificates), WebSocket and secure WebSocket on ``/mqtt``.

Every listener feeds the same :class:`~mqtthub.broker.connection.Connection`
protocol. TCP and TLS use ``loop.create_server`` directly; WebSocket listeners run
the ``websockets`` server and adapt each connection to the transport interface the
protocol expects (:class:`WebSocketTransport`), with MQTT carried in binary
frames [MQTT-6.0.0-1] and the ``mqtt`` / ``mqttv3.1`` subprotocols [MQTT-6.0.0-3].
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Sequence
from typing import Any, Protocol

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from mqtthub.broker.config import ListenerConfig
from mqtthub.broker.connection import Connection
from mqtthub.broker.core import BrokerCore
from mqtthub.errors import MalformedPacketError

logger = logging.getLogger(__name__)

WS_SUBPROTOCOLS = (Subprotocol("mqtt"), Subprotocol("mqttv3.1"))
_WS_HIGH_WATER = 256 * 1024


class Listener(Protocol):
    """A bound listener."""

    config: ListenerConfig

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) actually bound."""
        ...

    async def close(self) -> None:
        """Stop accepting and release the socket."""
        ...


def tls_context(config: ListenerConfig) -> ssl.SSLContext:
    """Server TLS context; with ``cafile`` it asks for client certificates (required or optional)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    assert config.certfile is not None
    assert config.keyfile is not None
    context.load_cert_chain(config.certfile, config.keyfile)
    if config.cafile is not None:
        context.load_verify_locations(cafile=config.cafile)
        context.verify_mode = ssl.CERT_REQUIRED if config.require_client_cert else ssl.CERT_OPTIONAL
    return context


async def start_listener(config: ListenerConfig, core: BrokerCore) -> Listener:
    """Bind one listener as configured."""
    context = tls_context(config) if config.is_tls else None
    if config.is_websocket:
        return await WebSocketListener.start(config, core, context)
    return await StreamListener.start(config, core, context)


class StreamListener:
    """TCP or TLS listener."""

    def __init__(self, config: ListenerConfig, server: asyncio.Server) -> None:
        self.config = config
        self._server = server

    @classmethod
    async def start(cls, config: ListenerConfig, core: BrokerCore, context: ssl.SSLContext | None) -> StreamListener:
        """Bind and start accepting."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: Connection(core, config.kind),
            config.host,
            config.port,
            ssl=context,
            reuse_address=True,
            backlog=core.config.listen_backlog,
        )
        return cls(config, server)

    @property
    def address(self) -> tuple[str, int]:
        """See :attr:`Listener.address`."""
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    async def close(self) -> None:
        """See :meth:`Listener.close`."""
        self._server.close()
        await self._server.wait_closed()


class WebSocketTransport(asyncio.Transport):
    """Presents one WebSocket connection as an asyncio transport to :class:`Connection`.

    Writes of one event-loop pass are joined into one binary message; a named
    sender task of the broker's task group sends them. Reading pauses by not
    taking the next frame from the WebSocket (whose own queue is bounded).
    """

    def __init__(self, ws: ServerConnection, extra: dict[str, Any]) -> None:
        super().__init__(extra)
        self._ws = ws
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._wake = asyncio.Event()
        self.readable = asyncio.Event()
        self.readable.set()
        self._closing = False
        self._writing_paused = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue bytes for the sender."""
        self.writelines([bytes(data)])

    def writelines(self, list_of_data: Any) -> None:
        """Queue bytes for the sender."""
        for data in list_of_data:
            chunk = bytes(data)
            self._chunks.append(chunk)
            self._buffered += len(chunk)
        self._wake.set()

    def close(self) -> None:
        """Flush what is queued, then close the WebSocket."""
        self._closing = True
        self._wake.set()
        self.readable.set()

    def is_closing(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closing

    def pause_reading(self) -> None:
        """Stop taking frames."""
        self.readable.clear()

    def resume_reading(self) -> None:
        """Take frames again."""
        self.readable.set()

    def is_reading(self) -> bool:
        """Whether frames are being taken."""
        return self.readable.is_set()

    def get_write_buffer_size(self) -> int:
        """Bytes queued and not yet handed to the WebSocket."""
        return self._buffered

    async def send_loop(self, protocol: Connection) -> None:
        """Send queued bytes until closed; signal back-pressure to the protocol."""
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                if self._chunks:
                    data = b"".join(self._chunks)
                    self._chunks.clear()
                    if self._buffered > _WS_HIGH_WATER and not self._writing_paused:
                        self._writing_paused = True
                        protocol.pause_writing()
                    await self._ws.send(data)
                    self._buffered -= len(data)
                    if self._writing_paused and self._buffered < _WS_HIGH_WATER // 4:
                        self._writing_paused = False
                        protocol.resume_writing()
                if self._closing and not self._chunks:
                    await self._ws.close()
                    return
        except ConnectionClosed:
            return


def _select_subprotocol(connection: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
    """Pick ``mqtt`` (or ``mqttv3.1``) when offered [MQTT-6.0.0-4].

    A client offering neither is still served, without a subprotocol, rather than
    refused: lenient towards lax browser libraries, harmless for everyone else.
    """
    for subprotocol in WS_SUBPROTOCOLS:
        if subprotocol in offered:
            return subprotocol
    return None


class WebSocketListener:
    """WebSocket or secure WebSocket listener serving MQTT.

    Any request path is accepted, as Mosquitto does: clients differ in the path they ask for (``/mqtt`` is the
    common default, browser examples often use none), and the port alone says that this is MQTT.
    """

    def __init__(self, config: ListenerConfig, core: BrokerCore) -> None:
        self.config = config
        self._core = core
        self._server: Server | None = None

    @classmethod
    async def start(cls, config: ListenerConfig, core: BrokerCore, context: ssl.SSLContext | None) -> WebSocketListener:
        """Bind and start accepting."""
        listener = cls(config, core)
        listener._server = await serve(
            listener._handle,
            config.host,
            config.port,
            ssl=context,
            select_subprotocol=_select_subprotocol,
            compression=None,
            max_size=core.config.max_packet_size + 16,
            ping_interval=None,
            backlog=core.config.listen_backlog,
        )
        return listener

    @property
    def address(self) -> tuple[str, int]:
        """See :attr:`Listener.address`."""
        assert self._server is not None
        host, port = next(iter(self._server.sockets)).getsockname()[:2]
        return str(host), int(port)

    async def close(self) -> None:
        """See :meth:`Listener.close`."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, ws: ServerConnection) -> None:
        peer = ws.remote_address
        peercert = ws.transport.get_extra_info("peercert") if self.config.is_tls else None
        transport = WebSocketTransport(ws, {"peername": peer, "peercert": peercert})
        conn = Connection(self._core, self.config.kind)
        conn.connection_made(transport)
        sender = self._core.spawn(transport.send_loop(conn), name=f"mqtt-ws-send:{conn.peer}")
        try:
            async for frame in ws:
                if isinstance(frame, str):
                    conn.fail(MalformedPacketError("text frame on an MQTT WebSocket [MQTT-6.0.0-1]"))
                    break
                if not transport.readable.is_set():
                    await transport.readable.wait()
                if transport.is_closing():
                    break
                conn.data_received(frame)
        except ConnectionClosed:
            pass
        finally:
            transport.close()
            conn.connection_lost(None)
            await asyncio.wait([sender], timeout=5)
