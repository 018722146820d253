"""The public surface of mqtthub.mqtt, pinned: adding or removing a name is a deliberate change."""

from __future__ import annotations

import mqtthub.mqtt


def test_exported_members() -> None:
    assert sorted(mqtthub.mqtt.__all__) == sorted(
        [
            *("PROTOCOL_V5", "PROTOCOL_V311", "Packet", "PacketType", "Properties", "Will", "SubscriptionRequest"),
            *("Connect", "Connack", "Publish", "Puback", "Pubrec", "Pubrel", "Pubcomp", "Subscribe", "Suback"),
            *("Unsubscribe", "Unsuback", "Pingreq", "Pingresp", "Disconnect", "Auth"),
            *("PacketReader", "encode", "encode_publish", "PublishFanout"),
            *("ReasonCode", "ConnackReturnCode", "connack_code_for"),
            *("validate_topic_name", "validate_topic_filter", "parse_shared", "topic_matches"),
        ]
    )
    for name in mqtthub.mqtt.__all__:
        assert getattr(mqtthub.mqtt, name) is not None
