"""PublishFanout gives the same bytes as encode_publish, for every form, from its cache."""

from __future__ import annotations

import pytest

from mqtthub.mqtt import PacketReader, Properties, Publish, PublishFanout, encode_publish

BIG = b"\x07" * 300  # remaining length above 127: a two-byte varint


@pytest.mark.parametrize("payload", [b"p", BIG], ids=["short", "long"])
@pytest.mark.parametrize("level", [3, 4, 5])
@pytest.mark.parametrize(("qos", "dup"), [(0, False), (1, False), (1, True), (2, False)])
@pytest.mark.parametrize("retain", [False, True])
def test_matches_encode_publish(payload: bytes, level: int, qos: int, dup: bool, retain: bool) -> None:
    props = Properties(content_type="text/plain", user_properties=[("a", "b")])
    fanout = PublishFanout("x/y", payload, props)
    for packet_id in (1, 0xFFFF) if qos else (None,):
        expected = encode_publish("x/y", payload, qos, retain, dup, packet_id, props, level)
        assert fanout.encode(qos, retain, level, packet_id, dup) == expected
        assert fanout.encode(qos, retain, level, packet_id, dup) == expected  # from the cache


def test_decodes_to_the_message() -> None:
    fanout = PublishFanout(b"t", b"data")
    wires = [fanout.encode(1, False, 4, packet_id) for packet_id in (1, 2, 3)]
    decoded = PacketReader().feed(b"".join(wires))
    assert decoded == [Publish("t", b"data", 1, packet_id=packet_id) for packet_id in (1, 2, 3)]


@pytest.mark.parametrize(("qos", "packet_id"), [(0, 5), (1, None), (1, 0), (2, 0x10000), (3, 1)])
def test_inconsistent_arguments(qos: int, packet_id: int | None) -> None:
    with pytest.raises(ValueError, match="QoS"):
        PublishFanout("t", b"").encode(qos, False, 4, packet_id)
