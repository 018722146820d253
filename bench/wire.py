"""The load generator's side of MQTT 3.1.1: a few pre-encoded packets and one client protocol.

It is written for speed, not completeness: publishers write packets encoded once
up front, and :class:`BenchClient` frames incoming bytes with a small loop that
only looks at what the benchmark needs (PUBLISH: count, packet id, send
timestamp; PUBACK: count; CONNACK and SUBACK: result).
"""

from __future__ import annotations

import asyncio
import time
from array import array
from collections.abc import Callable
from typing import cast

PUBLISH = 0x30
PUBACK = 0x40
CONNACK = 0x20
SUBACK = 0x90
DISCONNECT = b"\xe0\x00"


def _length(value: int) -> bytes:
    # Remaining length as a variable byte integer [MQTT-2.2.3].
    out = bytearray()
    while True:
        value, digit = divmod(value, 128)
        out.append(digit | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _string(text: str) -> bytes:
    raw = text.encode()
    return len(raw).to_bytes(2, "big") + raw


def connect_packet(
    client_id: str,
    *,
    keepalive: int = 600,
    clean: bool = True,
    username: str | None = None,
    password: str | None = None,
) -> bytes:
    """CONNECT, MQTT 3.1.1, with a user name and password when given; ``clean=False`` asks for a persistent session."""
    flags = (0x02 if clean else 0x00) | (0x80 if username is not None else 0) | (0x40 if password is not None else 0)
    body = _string("MQTT") + bytes((4, flags)) + keepalive.to_bytes(2, "big") + _string(client_id)
    for credential in (username, password):
        if credential is not None:
            body += _string(credential)
    return bytes((0x10,)) + _length(len(body)) + body


def subscribe_packet(topic_filter: str, qos: int, packet_id: int = 1) -> bytes:
    """SUBSCRIBE to one filter."""
    body = packet_id.to_bytes(2, "big") + _string(topic_filter) + bytes((qos,))
    return bytes((0x82,)) + _length(len(body)) + body


def publish_packet(topic: str, payload: bytes, qos: int, packet_id: int = 0) -> bytes:
    """PUBLISH; ``packet_id`` only for QoS 1 and 2."""
    variable = _string(topic) + (packet_id.to_bytes(2, "big") if qos else b"")
    return bytes((PUBLISH | qos << 1,)) + _length(len(variable) + len(payload)) + variable + payload


def publish_template(topic: str, payload_size: int, qos: int) -> tuple[bytes, bytes, int]:
    """A PUBLISH split around its packet id (QoS 1) or payload start (QoS 0).

    Returns ``(head, tail, payload_size)``: for QoS 1 ``head + packet_id + tail`` is
    a packet whose payload is ``tail``; for QoS 0, ``head + payload`` with a
    payload of exactly ``payload_size`` bytes.
    """
    packet = publish_packet(topic, bytes(payload_size), qos, packet_id=0xFFFF if qos else 0)
    split = len(packet) - payload_size - (2 if qos else 0)
    tail = packet[split + 2 :] if qos else b""
    return packet[:split], tail, payload_size


def _long_length(data: bytes, pos: int, size: int) -> tuple[int, int]:
    # A remaining length of two to four bytes: (value, offset after it), or (0, -1) if incomplete.
    value = 0
    shift = 0
    while pos < size and shift <= 21:
        digit = data[pos]
        pos += 1
        value |= (digit & 0x7F) << shift
        if not digit & 0x80:
            return value, pos
        shift += 7
    return 0, -1


class BenchClient(asyncio.Protocol):
    """One MQTT connection of the load generator.

    Counts PUBLISH packets received (answering PUBACK for QoS 1 in one write per
    chunk), PUBACKs received, and when ``latencies`` is given records receive time
    minus the ``time.monotonic_ns()`` stamp carried in the first 8 bytes of each
    payload. ``on_progress`` is called after each chunk that carried PUBLISHes.
    """

    def __init__(self, latencies: array[int] | None = None) -> None:
        loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.connack: asyncio.Future[int] = loop.create_future()
        self.suback: asyncio.Future[int] = loop.create_future()
        self.received = 0
        self.acked = 0
        self.last_ns = 0
        self.latencies = latencies
        self.on_progress: Callable[[BenchClient], None] | None = None
        self._rest = b""
        self._ack_waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self._paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        """Release anyone waiting."""
        for future in (self.connack, self.suback, self._ack_waiter, self._drain_waiter):
            if future is not None and not future.done():
                future.set_exception(ConnectionError("connection lost"))
                # Nobody may be waiting (a SUBACK that was never asked for): do not log it as unretrieved.
                future.add_done_callback(asyncio.Future.exception)

    def pause_writing(self) -> None:
        """The socket buffer is full."""
        self._paused = True

    def resume_writing(self) -> None:
        """The socket buffer drained."""
        self._paused = False
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def drain(self) -> None:
        """Wait until the socket buffer is below its high-water mark."""
        if self._paused:
            self._drain_waiter = asyncio.get_running_loop().create_future()
            await self._drain_waiter

    async def wait_acked(self, count: int) -> None:
        """Wait until at least ``count`` PUBACKs have arrived."""
        while self.acked < count:
            self._ack_waiter = asyncio.get_running_loop().create_future()
            await self._ack_waiter

    def data_received(self, data: bytes) -> None:
        """Frame the chunk; see the class docstring."""
        if self._rest:
            data = self._rest + data
        size = len(data)
        index = 0
        received = 0
        acked = 0
        acks: list[bytes] = []
        latencies = self.latencies
        now = time.monotonic_ns()
        while size - index >= 2:
            header = data[index]
            length = data[index + 1]
            start = index + 2
            if length & 0x80:
                length, start = _long_length(data, index + 1, size)
                if start < 0:
                    break
            end = start + length
            if end > size:
                break
            kind = header & 0xF0
            if kind == PUBLISH:
                received += 1
                payload = start + 2 + (data[start] << 8 | data[start + 1])
                if header & 0x06:
                    acks.append(b"\x40\x02" + data[payload : payload + 2])
                    payload += 2
                if latencies is not None:
                    latencies.append(now - int.from_bytes(data[payload : payload + 8], "big"))
            elif kind == PUBACK:
                acked += 1
            elif kind == CONNACK:
                if not self.connack.done():
                    self.connack.set_result(data[start + 1])
            elif kind == SUBACK and not self.suback.done():
                self.suback.set_result(data[end - 1])
            index = end
        self._rest = data[index:]
        if acks and self.transport is not None:
            self.transport.write(b"".join(acks))
        if received:
            self.received += received
            self.last_ns = now
            if self.on_progress is not None:
                self.on_progress(self)
        if acked:
            self.acked += acked
            waiter, self._ack_waiter = self._ack_waiter, None
            if waiter is not None and not waiter.done():
                waiter.set_result(None)


async def open_client(
    port: int,
    client_id: str,
    *,
    latencies: array[int] | None = None,
    timeout: float = 10.0,
    clean: bool = True,
) -> BenchClient:
    """Connect to 127.0.0.1:``port`` and complete CONNECT/CONNACK."""
    loop = asyncio.get_running_loop()
    _, client = await asyncio.wait_for(
        loop.create_connection(lambda: BenchClient(latencies), "127.0.0.1", port), timeout
    )
    assert client.transport is not None
    client.transport.write(connect_packet(client_id, clean=clean))
    code = await asyncio.wait_for(client.connack, timeout)
    if code != 0:
        client.transport.close()
        raise ConnectionError(f"CONNACK return code {code} for {client_id}")
    return client


async def subscribe(client: BenchClient, topic_filter: str, qos: int, *, timeout: float = 10.0) -> None:
    """Subscribe and wait for SUBACK; a refusal (0x80) raises."""
    assert client.transport is not None
    client.transport.write(subscribe_packet(topic_filter, qos))
    granted = await asyncio.wait_for(client.suback, timeout)
    if granted == 0x80:
        raise ConnectionError(f"subscription to {topic_filter} refused")


def close_client(client: BenchClient) -> None:
    """Send DISCONNECT and close."""
    transport = client.transport
    if transport is not None and not transport.is_closing():
        transport.write(DISCONNECT)
        transport.close()
