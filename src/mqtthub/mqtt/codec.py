"""The incremental MQTT stream parser and the encoding entry points.

:class:`PacketReader` turns the bytes of one connection, in whatever chunks they arrive, into packets. It
parses by offset within each chunk and keeps only an incomplete tail between calls; when a packet spans
many chunks it collects them and joins once, when the announced size has arrived, so a large packet costs
linear time however it is split.
"""

from __future__ import annotations

from mqtthub.errors import MalformedPacketError, PacketTooLargeError
from mqtthub.mqtt.decode import DECODERS, decode_connect, decode_publish
from mqtthub.mqtt.encode import encode, encode_publish
from mqtthub.mqtt.packets import PROTOCOL_V5, PROTOCOL_V311, Packet, PacketType
from mqtthub.mqtt.primitives import MAX_VARINT

__all__ = ["PacketReader", "encode", "encode_publish"]

# Required low nibble of the first byte per packet type [MQTT-2.2.2-2]; PUBLISH carries its flags there.
_FLAGS_0010 = (PacketType.PUBREL, PacketType.SUBSCRIBE, PacketType.UNSUBSCRIBE)
_FLAGS: dict[int, int] = {ptype: 2 if ptype in _FLAGS_0010 else 0 for ptype in PacketType}
# Plain ints: comparing with an IntEnum member costs an attribute lookup on every packet.
_PUBLISH = int(PacketType.PUBLISH)
_CONNECT = int(PacketType.CONNECT)


class PacketReader:
    """Incremental parser for one direction of one connection.

    The first CONNECT is decoded at whatever level it announces, and the reader then adopts that level, so
    packets pipelined behind CONNECT in the same chunk are decoded right. The broker may set
    :attr:`protocol_level` at any time.

    Args:
        protocol_level: Level used for every packet but CONNECT: 3 or 4 (3.1.1 layouts) or 5.
        max_packet_size: Largest accepted packet, fixed header included [MQTT-3.1.2-24] [MQTT-3.2.2-15].
    """

    __slots__ = ("_chunks", "_chunks_size", "_needed", "max_packet_size", "protocol_level")

    def __init__(self, *, protocol_level: int = PROTOCOL_V311, max_packet_size: int = MAX_VARINT) -> None:
        self.protocol_level = protocol_level
        self.max_packet_size = max_packet_size
        self._chunks: list[bytes] | None = None
        """The incomplete tail, in chunks as they came; made when a packet spans reads (an idle connection has
        none, and an empty list costs 56 bytes)."""
        self._chunks_size = 0
        self._needed = 0

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete packet."""
        return self._chunks_size

    def feed(self, data: bytes | bytearray | memoryview) -> list[Packet]:
        """Add received bytes and return every packet they complete, in order.

        Args:
            data: The next bytes of the stream (any split, possibly empty).

        Returns:
            The complete packets; an incomplete tail is kept for the next call.

        Raises:
            MalformedPacketError: The stream is not valid MQTT [MQTT-1.5] [MQTT-2.2.2-2]. The connection cannot
                be resynchronised afterwards and must be closed.
            PacketTooLargeError: A fixed header announces more than :attr:`max_packet_size` bytes; raised
                before the body is buffered.
            ProtocolError: A well-formed packet the spec forbids (see the decoders).
        """
        chunks = self._chunks
        if chunks:
            chunk = bytes(data)
            chunks.append(chunk)
            self._chunks_size += len(chunk)
            if self._chunks_size < self._needed:
                return []
            buf = b"".join(chunks)
            self._chunks = None
        else:
            buf = bytes(data)
        packets: list[Packet] = []
        append = packets.append
        level = self.protocol_level
        max_size = self.max_packet_size
        size = len(buf)
        pos = 0
        needed = 0
        while pos < size:
            if pos + 2 > size:
                needed = 2
                break
            first = buf[pos]
            length = buf[pos + 1]
            start = pos + 2
            if length & 0x80:
                header = self._long_length(buf, pos, size)
                if header is None:
                    needed = size - pos + 1
                    break
                length, start = header
            end = start + length
            if end - pos > max_size:
                raise PacketTooLargeError(f"packet of {end - pos} bytes exceeds {max_size}")
            if end > size:
                needed = end - pos
                break
            if first >> 4 == _PUBLISH:
                append(decode_publish(buf, start, end, first & 0x0F, level))
            elif first >> 4 == _CONNECT:
                if first & 0x0F:
                    raise MalformedPacketError("reserved flags of CONNECT set [MQTT-2.2.2-2]")
                connect = decode_connect(buf, start, end, 0, level)
                level = self.protocol_level = connect.protocol_level
                append(connect)
            else:
                append(self._decode_other(buf, start, end, first))
            pos = end
        if pos < size:
            tail = buf[pos:]
            self._chunks = [tail]
            self._chunks_size = len(tail)
            self._needed = needed
        else:
            self._chunks_size = 0
        return packets

    def _decode_other(self, buf: bytes, start: int, end: int, first: int) -> Packet:
        ptype = first >> 4
        if not ptype or (ptype == PacketType.AUTH and self.protocol_level != PROTOCOL_V5):
            raise MalformedPacketError(f"reserved packet type {ptype} [MQTT-2.1.2]")
        if first & 0x0F != _FLAGS[ptype]:
            raise MalformedPacketError(f"wrong flags 0x{first & 0x0F:X} for {PacketType(ptype).name} [MQTT-2.2.2-2]")
        return DECODERS[ptype](buf, start, end, 0, self.protocol_level)

    @staticmethod
    def _long_length(buf: bytes, pos: int, size: int) -> tuple[int, int] | None:
        """Read a remaining length of two to four bytes [MQTT-2.2.3]; ``None`` if it is not all here yet."""
        length = 0
        shift = 0
        index = pos + 1
        while True:
            if index >= size:
                return None
            byte = buf[index]
            index += 1
            length |= (byte & 0x7F) << shift
            if not byte & 0x80:
                if not byte:
                    raise MalformedPacketError("remaining length not in its shortest form [MQTT-1.5.5-1]")
                return length, index
            shift += 7
            if shift > 21:
                raise MalformedPacketError("remaining length longer than four bytes [MQTT-2.2.3]")
