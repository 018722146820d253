"""Arbitrary and mutated input never escapes as anything but ProtocolError (or a clean need for more bytes)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mqtthub.errors import ProtocolError
from mqtthub.mqtt import PROTOCOL_V5, Packet, PacketReader, encode
from tests.unit.mqtt.strategies import connects, packets


def feed_all(level: int, data: bytes) -> None:
    reader = PacketReader(protocol_level=level, max_packet_size=4096)
    try:
        for packet in reader.feed(data):
            assert isinstance(encode(packet, reader.protocol_level), bytes)
    except ProtocolError:
        pass


@settings(max_examples=300)
@given(st.sampled_from([4, 5]), st.binary(max_size=64))
def test_random_bytes(level: int, data: bytes) -> None:
    feed_all(level, data)


@settings(max_examples=300)
@given(st.sampled_from([4, 5]), st.integers(0, 15), st.binary(max_size=40))
def test_random_body_behind_a_valid_fixed_header(level: int, ptype: int, body: bytes) -> None:
    flags = 2 if ptype in (6, 8, 10) else 0
    feed_all(level, bytes((ptype << 4 | flags, len(body))) + body)


@settings(max_examples=300)
@given(st.data())
def test_mutated_packets(data: st.DataObject) -> None:
    level = data.draw(st.sampled_from([4, 5]))
    packet: Packet = data.draw(st.one_of(packets(level), connects(level)))
    wire = bytearray(encode(packet, level))
    for _ in range(data.draw(st.integers(1, 3))):
        wire[data.draw(st.integers(0, len(wire) - 1))] = data.draw(st.integers(0, 255))
    feed_all(PROTOCOL_V5 if level == PROTOCOL_V5 else 4, bytes(wire))
