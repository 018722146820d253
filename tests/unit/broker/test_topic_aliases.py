"""The outbound topic-alias table: least recently used topics give their alias up."""

from __future__ import annotations

import pytest

from mqtthub.broker.topic_aliases import OutboundAliases
from mqtthub.mqtt import PROTOCOL_V5, PacketReader, Properties, Publish
from mqtthub.mqtt.encode import encode_aliased_publish


def test_new_topics_get_fresh_aliases_then_known_ones_are_reused() -> None:
    aliases = OutboundAliases(3)
    assert aliases.assign("a") == (1, False)
    assert aliases.assign("b") == (2, False)
    assert aliases.assign("a") == (1, True)
    assert aliases.assign("c") == (3, False)
    assert len(aliases) == 3


def test_the_least_recently_used_topic_gives_its_alias_up() -> None:
    aliases = OutboundAliases(2)
    aliases.assign("a")
    aliases.assign("b")
    aliases.assign("a")  # b is now the least recently used
    assert aliases.assign("c") == (2, False)
    assert aliases.assign("a") == (1, True)
    assert aliases.assign("b") == (2, False)  # c was older than a
    assert len(aliases) == 2


def test_a_forgotten_alias_is_handed_out_again() -> None:
    aliases = OutboundAliases(4)
    aliases.assign("a")
    aliases.assign("b")
    aliases.forget("a")
    aliases.forget("unknown")
    assert aliases.assign("c") == (1, False)
    assert aliases.assign("a") == (3, False)


@pytest.mark.parametrize("maximum", [0, 65536])
def test_maximum_out_of_range(maximum: int) -> None:
    with pytest.raises(ValueError, match="topic alias maximum"):
        OutboundAliases(maximum)


@pytest.mark.parametrize(
    ("topic", "qos", "properties"),
    [
        (b"sensors/long/topic", 0, None),
        (b"", 1, None),
        (b"sensors/long/topic", 2, Properties(content_type="text/plain", user_properties=[("k", "v")])),
        (b"", 0, Properties(message_expiry_interval=60)),
    ],
)
def test_aliased_publish_decodes_with_its_alias(topic: bytes, qos: int, properties: Properties | None) -> None:
    packet_id = 7 if qos else None
    wire = encode_aliased_publish(topic, 5, b"payload", qos, True, packet_id, properties)
    (packet,) = PacketReader(protocol_level=PROTOCOL_V5).feed(wire)
    assert isinstance(packet, Publish)
    assert (packet.topic, packet.payload, packet.qos, packet.retain, packet.packet_id) == (
        topic.decode(),
        b"payload",
        qos,
        True,
        packet_id,
    )
    assert packet.properties is not None
    assert packet.properties.topic_alias == 5
    if properties is not None:
        assert packet.properties.content_type == properties.content_type
        assert packet.properties.user_properties == properties.user_properties
        assert packet.properties.message_expiry_interval == properties.message_expiry_interval


def test_aliased_publish_refuses_inconsistent_qos() -> None:
    with pytest.raises(ValueError, match="packet identifier"):
        encode_aliased_publish(b"t", 1, b"", 1, False, None, None)
