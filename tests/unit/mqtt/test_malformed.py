"""Invalid input: each case asserts the exact error class and the reason code the broker will send."""

from __future__ import annotations

import pytest

from mqtthub.errors import MalformedPacketError, ProtocolError
from mqtthub.mqtt import PacketReader

M = MalformedPacketError
P = ProtocolError
CONNECT_V311_HEAD = "0004 4d515454 04"

# (id, protocol level of the reader, hex bytes, expected class, expected reason code)
CASES: list[tuple[str, int, str, type[ProtocolError], int]] = [
    ("reserved type 0", 4, "00 00", M, 0x81),
    ("AUTH before 5.0", 4, "f0 00", M, 0x81),
    ("PINGREQ flags", 4, "c1 00", M, 0x81),
    ("PUBREL flags 0", 4, "60 02 0001", M, 0x81),
    ("SUBSCRIBE flags 0", 4, "80 06 0001 0001 61 00", M, 0x81),
    ("UNSUBSCRIBE flags 0", 4, "a0 05 0001 0001 61", M, 0x81),
    ("PUBACK flags", 4, "41 02 0001", M, 0x81),
    ("remaining length of five bytes", 4, "30 ff ff ff ff 01", M, 0x81),
    ("remaining length not minimal", 4, "30 80 00", M, 0x81),
    ("PUBLISH QoS 3", 4, "36 05 0001 61 0001", M, 0x81),
    ("PUBLISH DUP at QoS 0", 4, "38 03 0001 61", M, 0x81),
    ("PUBLISH packet id 0", 4, "32 05 0001 61 0000", M, 0x81),
    ("PUBLISH topic runs past packet", 4, "30 03 0005 61", M, 0x81),
    ("PUBLISH topic bad UTF-8", 4, "30 04 0002 c328", M, 0x81),
    ("PUBLISH topic surrogate", 4, "30 05 0003 eda080", M, 0x81),
    ("PUBLISH topic overlong", 4, "30 04 0002 c0af", M, 0x81),
    ("PUBLISH topic U+0000", 4, "30 04 0002 6100", M, 0x81),
    ("PUBLISH topic wildcard", 4, "30 05 0003 612f23", P, 0x90),
    ("PUBLISH empty topic at 3.1.1", 4, "30 02 0000", P, 0x82),
    ("PUBLISH empty topic without alias", 5, "30 03 0000 00", P, 0x82),
    ("PUBACK missing packet id", 4, "40 01 00", M, 0x81),
    ("PUBACK packet id 0", 4, "40 02 0000", M, 0x81),
    ("PUBACK trailing byte at 3.1.1", 4, "40 03 0001 00", M, 0x81),
    ("PINGREQ with body", 4, "c0 01 00", M, 0x81),
    ("DISCONNECT with body at 3.1.1", 4, "e0 01 00", M, 0x81),
    ("CONNACK reserved flags", 4, "20 02 02 00", M, 0x81),
    ("CONNACK too long at 3.1.1", 4, "20 03 00 00 00", M, 0x81),
    ("SUBSCRIBE without filters", 4, "82 02 0001", P, 0x82),
    ("SUBSCRIBE reserved option bits at 3.1.1", 4, "82 06 0001 0001 61 04", M, 0x81),
    ("SUBSCRIBE QoS 3", 5, "82 07 0001 00 0001 61 03", M, 0x81),
    ("SUBSCRIBE reserved option bits at 5.0", 5, "82 07 0001 00 0001 61 40", M, 0x81),
    ("SUBSCRIBE retain handling 3", 5, "82 07 0001 00 0001 61 30", P, 0x82),
    ("SUBSCRIBE options missing", 4, "82 05 0001 0001 61", M, 0x81),
    ("SUBSCRIBE two subscription ids", 5, "82 0b 0001 04 0b01 0b02 0001 61 00", P, 0x82),
    ("SUBSCRIBE subscription id 0", 5, "82 09 0001 02 0b00 0001 61 00", P, 0x82),
    ("UNSUBSCRIBE without filters", 4, "a2 02 0001", P, 0x82),
    ("unknown property", 5, "30 06 0001 61 02 7f 00", M, 0x81),
    ("property not allowed in PUBLISH", 5, "30 09 0001 61 05 11 0000000a", M, 0x81),
    ("property given twice", 5, "30 0d 0001 61 0a 02 00000001 02 00000002", M, 0x81),
    ("property length past packet", 5, "30 04 0001 61 05", M, 0x81),
    ("property value past property length", 5, "30 06 0001 61 02 23 00", M, 0x81),
    ("property value not minimal varint", 5, "30 07 0001 61 03 0b 80 00", M, 0x81),
    ("user property value bad UTF-8", 5, "30 0c 0001 61 07 26 0001 6b 0002 c328", M, 0x81),
    ("topic alias 0", 5, "30 07 0001 61 03 23 0000", P, 0x82),
    ("payload format indicator 2", 5, "30 06 0001 61 02 01 02", P, 0x82),
    ("receive maximum 0", 5, f"10 10 {CONNECT_V311_HEAD[:-2]}05 02 003c 03 21 0000 0000", P, 0x82),
    ("maximum QoS 2", 5, "20 05 00 00 02 24 02", P, 0x82),
    ("CONNECT protocol name wrong", 4, "10 0c 0004 4d515458 04 02 003c 0000", P, 0x84),
    ("CONNECT MQIsdp with level 4", 4, "10 0e 0006 4d5149736470 04 02 003c 0000", P, 0x84),
    ("CONNECT unsupported level", 4, "10 0c 0004 4d515454 06 02 003c 0000", P, 0x84),
    ("CONNECT flags", 4, "11 0c 0004 4d515454 04 02 003c 0000", M, 0x81),
    ("CONNECT reserved flag", 4, f"10 0c {CONNECT_V311_HEAD} 03 003c 0000", M, 0x81),
    ("CONNECT will QoS 3", 4, f"10 0c {CONNECT_V311_HEAD} 1e 003c 0000", M, 0x81),
    ("CONNECT will retain without will", 4, f"10 0c {CONNECT_V311_HEAD} 22 003c 0000", M, 0x81),
    ("CONNECT will QoS without will", 4, f"10 0c {CONNECT_V311_HEAD} 0a 003c 0000", M, 0x81),
    ("CONNECT password without user at 3.1.1", 4, f"10 0f {CONNECT_V311_HEAD} 42 003c 0000 0001 70", M, 0x81),
    ("CONNECT truncated header", 4, "10 06 0004 4d515454", M, 0x81),
    ("CONNECT trailing bytes", 4, f"10 0d {CONNECT_V311_HEAD} 02 003c 0000 00", M, 0x81),
    ("CONNECT will property not allowed", 5, "10 13 0004 4d515454 05 06 003c 00 0000 02 2301 0001 77 0000", M, 0x81),
]


@pytest.mark.parametrize(("level", "wire", "error", "reason_code"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rejected(level: int, wire: str, error: type[ProtocolError], reason_code: int) -> None:
    with pytest.raises(ProtocolError) as caught:
        PacketReader(protocol_level=level).feed(bytes.fromhex(wire))
    assert type(caught.value) is error
    assert caught.value.reason_code == reason_code


def test_truncated_varint_waits_for_more() -> None:
    reader = PacketReader()
    assert reader.feed(bytes.fromhex("30 ff")) == []
    with pytest.raises(MalformedPacketError):
        reader.feed(bytes.fromhex("ff ff ff 01"))


@pytest.mark.parametrize(
    ("wire", "connack_level"),
    [
        ("10 0c 0004 4d515454 06 02 003c 0000", 4),  # unknown level: the 3.1.1 layout every client reads
        ("10 0c 0004 4d515458 04 02 003c 0000", 4),  # 3.1.1 with a wrong name
        ("10 0d 0004 4d515458 05 02 003c 00 0000", 5),  # level 5 with a wrong name
        ("10 0d 0004 4d515454 05 03 003c 00 0000", 5),  # level 5, reserved flag: 5.0 may be told why
        ("10 0c 0004 4d515454 04 03 003c 0000", None),  # 3.1.1 malformed: closed without CONNACK
    ],
)
def test_connect_refusal_names_its_connack_layout(wire: str, connack_level: int | None) -> None:
    with pytest.raises(ProtocolError) as caught:
        PacketReader().feed(bytes.fromhex(wire))
    assert caught.value.connack_level == connack_level
