"""PacketReader as a stream parser: arbitrary splits, pipelining behind CONNECT, size limits."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mqtthub.errors import PacketTooLargeError
from mqtthub.mqtt import (
    PROTOCOL_V5,
    Connect,
    Disconnect,
    Packet,
    PacketReader,
    Pingreq,
    Properties,
    Puback,
    Publish,
    Subscribe,
    SubscriptionRequest,
    encode,
)
from tests.unit.mqtt.strategies import packets

STREAM: list[Packet] = [
    Publish("a/b", b"x" * 200, 1, packet_id=1, properties=Properties(user_properties=[("k", "v")])),
    Puback(1, 0x10),
    Pingreq(),
    Publish("c", b""),
    Subscribe(2, [SubscriptionRequest("#", 2, retain_handling=1)]),
    Disconnect(0x04),
]
WIRE = b"".join(encode(packet, PROTOCOL_V5) for packet in STREAM)


def test_one_byte_at_a_time() -> None:
    reader = PacketReader(protocol_level=PROTOCOL_V5)
    out: list[Packet] = []
    for index in range(len(WIRE)):
        out += reader.feed(WIRE[index : index + 1])
    assert out == STREAM
    assert reader.buffered == 0


def test_all_at_once_and_empty_feeds() -> None:
    reader = PacketReader(protocol_level=PROTOCOL_V5)
    assert reader.feed(b"") == []
    assert reader.feed(WIRE) == STREAM
    assert reader.feed(b"") == []


def test_partial_packet_is_kept() -> None:
    reader = PacketReader(protocol_level=PROTOCOL_V5)
    first = len(encode(STREAM[0], PROTOCOL_V5))
    assert reader.feed(WIRE[: first + 3]) == STREAM[:1]
    assert reader.buffered == 3
    assert reader.feed(WIRE[first + 3 :]) == STREAM[1:]


@settings(max_examples=200)
@given(st.data())
def test_random_chunks(data: st.DataObject) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(WIRE)), max_size=20)))
    reader = PacketReader(protocol_level=PROTOCOL_V5)
    out: list[Packet] = []
    previous = 0
    for cut in [*cuts, len(WIRE)]:
        out += reader.feed(WIRE[previous:cut])
        previous = cut
    assert out == STREAM


@settings(max_examples=100)
@given(st.lists(packets(PROTOCOL_V5), min_size=1, max_size=8), st.data())
def test_random_streams_in_random_chunks(stream: list[Packet], data: st.DataObject) -> None:
    wire = b"".join(encode(packet, PROTOCOL_V5) for packet in stream)
    size = data.draw(st.integers(1, 64))
    reader = PacketReader(protocol_level=PROTOCOL_V5)
    out: list[Packet] = []
    for start in range(0, len(wire), size):
        out += reader.feed(wire[start : start + size])
    assert out == stream


def test_packets_pipelined_behind_connect_use_its_level() -> None:
    connect = Connect("c", PROTOCOL_V5)
    publish = Publish("t", b"p", properties=Properties(content_type="text/plain"))
    reader = PacketReader()
    assert reader.feed(encode(connect, PROTOCOL_V5) + encode(publish, PROTOCOL_V5)) == [connect, publish]
    assert reader.protocol_level == PROTOCOL_V5


def test_level_can_be_set_by_the_broker() -> None:
    reader = PacketReader()
    reader.protocol_level = PROTOCOL_V5
    assert reader.feed(encode(Puback(3, 0x80), PROTOCOL_V5)) == [Puback(3, 0x80)]


def test_accepts_bytearray_and_memoryview() -> None:
    reader = PacketReader(protocol_level=PROTOCOL_V5)
    assert reader.feed(bytearray(WIRE[:10])) + reader.feed(memoryview(WIRE)[10:]) == STREAM


def test_too_large_is_refused_from_the_fixed_header_alone() -> None:
    reader = PacketReader(max_packet_size=100)
    with pytest.raises(PacketTooLargeError) as caught:
        reader.feed(bytes((0x30, 0xC8, 0x01)))  # announces 200 bytes, none of them sent
    assert caught.value.reason_code == 0x95


def test_limit_counts_the_whole_packet() -> None:
    packet = encode(Publish("t", b"x" * 95), 4)
    assert len(packet) == 100
    assert PacketReader(max_packet_size=100).feed(packet) == [Publish("t", b"x" * 95)]
    with pytest.raises(PacketTooLargeError):
        PacketReader(max_packet_size=99).feed(packet)


def test_large_packet_in_many_chunks_joins_once() -> None:
    packet = Publish("big", b"\x01" * 1_000_000)
    wire = encode(packet, 4)
    reader = PacketReader()
    out: list[Packet] = []
    for start in range(0, len(wire), 1000):
        out += reader.feed(wire[start : start + 1000])
    assert out == [packet]
