"""MQTT data representations [MQTT-1.5]: integers, variable byte integers, strings, binary data.

Readers take the buffer, the offset to read at and the end of the current packet, and return the value with
the offset after it, so a packet is decoded without slicing the buffer it lives in. Every read is bounded by
``end``: a field that runs past its packet is malformed, even if the next packet's bytes are in the buffer.
"""

from __future__ import annotations

from struct import Struct

from mqtthub.errors import MalformedPacketError

MAX_VARINT = 268_435_455
UINT16 = Struct(">H")


def truncated(what: str) -> MalformedPacketError:
    """Build the error for a field that runs past the end of its packet [MQTT-1.5]."""
    return MalformedPacketError(f"truncated {what}")


def encode_varint(value: int) -> bytes:
    """Encode a variable byte integer with the minimum number of bytes [MQTT-1.5.5-1]."""
    if value < 0x80:
        return bytes((value,))
    if value > MAX_VARINT:
        raise ValueError(f"{value} does not fit a variable byte integer")
    out = bytearray()
    while True:
        digit = value & 0x7F
        value >>= 7
        if value:
            out.append(digit | 0x80)
        else:
            out.append(digit)
            return bytes(out)


def read_varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """Read a variable byte integer of at most four bytes [MQTT-1.5.5].

    Raises:
        MalformedPacketError: Truncated, longer than four bytes, or not in its shortest form [MQTT-1.5.5-1].
    """
    value = 0
    shift = 0
    while True:
        if pos >= end:
            raise truncated("variable byte integer")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if byte == 0 and shift:
                raise MalformedPacketError("variable byte integer not in its shortest form [MQTT-1.5.5-1]")
            return value, pos
        shift += 7
        if shift > 21:
            raise MalformedPacketError("variable byte integer longer than four bytes [MQTT-1.5.5]")


def read_uint16(buf: bytes, pos: int, end: int) -> int:
    """Read a two byte integer [MQTT-1.5.2] at ``pos``."""
    if pos + 2 > end:
        raise truncated("two byte integer")
    return buf[pos] << 8 | buf[pos + 1]


def read_binary(buf: bytes, pos: int, end: int) -> tuple[bytes, int]:
    """Read binary data: a two byte length and that many bytes [MQTT-1.5.6]."""
    if pos + 2 > end:
        raise truncated("binary data length")
    stop = pos + 2 + (buf[pos] << 8 | buf[pos + 1])
    if stop > end:
        raise truncated("binary data")
    return buf[pos + 2 : stop], stop


def read_utf8(buf: bytes, pos: int, end: int) -> tuple[str, int]:
    """Read a UTF-8 encoded string [MQTT-1.5.4].

    Python's strict UTF-8 decoder already refuses overlong forms and encoded surrogates [MQTT-1.5.4-1].

    Raises:
        MalformedPacketError: Truncated, not well-formed UTF-8 [MQTT-1.5.4-1] or holding U+0000 [MQTT-1.5.4-2].
    """
    if pos + 2 > end:
        raise truncated("string length")
    stop = pos + 2 + (buf[pos] << 8 | buf[pos + 1])
    if stop > end:
        raise truncated("string")
    try:
        text = buf[pos + 2 : stop].decode()
    except UnicodeDecodeError as exc:
        raise MalformedPacketError("string is not well-formed UTF-8 [MQTT-1.5.4-1]") from exc
    if "\x00" in text:
        raise MalformedPacketError("string contains U+0000 [MQTT-1.5.4-2]")
    return text, stop


def encode_binary(data: bytes) -> bytes:
    """Encode binary data with its two byte length [MQTT-1.5.6].

    Raises:
        ValueError: More than 65,535 bytes.
    """
    if len(data) > 0xFFFF:
        raise ValueError(f"{len(data)} bytes do not fit a length-prefixed field [MQTT-1.5.6]")
    return UINT16.pack(len(data)) + data


def encode_utf8(text: str) -> bytes:
    """Encode a UTF-8 string with its two byte length [MQTT-1.5.4].

    Raises:
        ValueError: More than 65,535 bytes once encoded.
    """
    return encode_binary(text.encode())


def is_utf8(payload: bytes) -> bool:
    """Whether a payload is well-formed UTF-8, as payload format indicator 1 claims [MQTT-3.3.2.3.2].

    A receiver may check the claim and refuse the message with 0x99; the indicator itself is
    forwarded unaltered to subscribers [MQTT-3.3.2-4].
    """
    try:
        payload.decode()
    except UnicodeDecodeError:
        return False
    return True
