"""Every MQTT 5.0 property, alone, in every packet that allows it; and the per-packet rules."""

from __future__ import annotations

from typing import Any

import pytest

from mqtthub.errors import MalformedPacketError
from mqtthub.mqtt import PacketType, Properties
from mqtthub.mqtt.properties import ALLOWED, EMPTY, WILL, decode_properties, encode_properties
from tests.unit.mqtt.strategies import PROPERTY_VALUES

SAMPLES: dict[int, Any] = {
    0x01: 1,
    0x02: 0xFFFF_FFFF,
    0x03: "application/json",
    0x08: "reply/to",
    0x09: b"\x00\xff",
    0x0B: [268_435_455],
    0x11: 0,
    0x12: "auto-1",
    0x13: 120,
    0x15: "SCRAM-SHA-1",
    0x16: b"challenge",
    0x17: 0,
    0x18: 30,
    0x19: 1,
    0x1A: "resp",
    0x1C: "other:1883",
    0x1F: "r\u00e9ason",
    0x21: 65535,
    0x22: 10,
    0x23: 7,
    0x24: 1,
    0x25: 0,
    0x26: [("", ""), ("k", "v"), ("k", "v")],
    0x27: 1_048_576,
    0x28: 1,
    0x29: 0,
    0x2A: 1,
}

CONTEXTS = [WILL, *PacketType]
ALLOWED_PAIRS = [(ident, ctx) for ctx in CONTEXTS for ident in sorted(ALLOWED[ctx])]


def test_table_covers_every_property() -> None:
    assert set(SAMPLES) == set(PROPERTY_VALUES)
    assert set().union(*ALLOWED.values()) == set(SAMPLES)
    assert ALLOWED[PacketType.PINGREQ] == ALLOWED[PacketType.PINGRESP] == frozenset({0x26})
    assert ALLOWED[PacketType.PUBLISH] == frozenset({0x01, 0x02, 0x03, 0x08, 0x09, 0x0B, 0x23, 0x26})
    assert ALLOWED[WILL] == frozenset({0x01, 0x02, 0x03, 0x08, 0x09, 0x18, 0x26})


@pytest.mark.parametrize(("ident", "context"), ALLOWED_PAIRS, ids=[f"{i:02x}-{c}" for i, c in ALLOWED_PAIRS])
def test_each_property_round_trips(ident: int, context: int) -> None:
    props = Properties()
    setattr(props, PROPERTY_VALUES[ident][0], SAMPLES[ident])
    wire = encode_properties(props, context)
    assert wire[1] == ident
    decoded, end = decode_properties(wire, 0, len(wire), context)
    assert (decoded, end) == (props, len(wire))


def test_properties_a_packet_cannot_carry_are_left_out() -> None:
    props = Properties(session_expiry_interval=5, reason_string="r", content_type="c")
    wire = encode_properties(props, PacketType.PUBLISH)
    assert decode_properties(wire, 0, len(wire), PacketType.PUBLISH)[0] == Properties(content_type="c")
    assert encode_properties(Properties(subscription_identifiers=[1]), PacketType.CONNACK) is EMPTY
    assert encode_properties(None, PacketType.PUBLISH) is EMPTY


@pytest.mark.parametrize("context", CONTEXTS)
def test_disallowed_property_is_malformed(context: int) -> None:
    for ident in sorted(set(SAMPLES) - ALLOWED[context]):
        props = Properties()
        setattr(props, PROPERTY_VALUES[ident][0], SAMPLES[ident])
        wire = encode_properties(props, next(c for c in CONTEXTS if ident in ALLOWED[c]))
        with pytest.raises(MalformedPacketError, match="not allowed"):
            decode_properties(wire, 0, len(wire), context)


def test_subscription_identifiers_repeat_in_publish() -> None:
    props = Properties(subscription_identifiers=[1, 127, 128, 16_384])
    wire = encode_properties(props, PacketType.PUBLISH)
    assert wire.hex() == "0b" + "0b01" + "0b7f" + "0b8001" + "0b808001"
    assert decode_properties(wire, 0, len(wire), PacketType.PUBLISH)[0] == props
