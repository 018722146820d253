"""Encoding one application message for many subscribers.

A message delivered to N subscribers has only a handful of distinct wire forms: one per (QoS, RETAIN, DUP,
protocol level), differing at QoS 1 and 2 only in the packet identifier. :class:`PublishFanout` encodes each
form once and, at QoS 1 and 2, splices the packet identifier between a cached head and tail, so the per
subscriber cost is one join instead of a full encoding.
"""

from __future__ import annotations

from mqtthub.mqtt.encode import encode_publish, publish_head
from mqtthub.mqtt.packets import PROTOCOL_V5, PacketType, Properties
from mqtthub.mqtt.primitives import UINT16
from mqtthub.mqtt.properties import encode_properties


class PublishFanout:
    """One message (topic, payload, properties) with its encodings cached per wire form.

    Subscribers whose PUBLISH needs its own properties (an MQTT 5.0 subscription identifier
    [MQTT-3.3.4-3], a topic alias) get :func:`~mqtthub.mqtt.encode.encode_publish` instead.

    Args:
        topic: The topic name, as text or UTF-8 bytes.
        payload: The application message.
        properties: Properties sent to MQTT 5.0 subscribers; ignored for 3.1.1.
    """

    __slots__ = ("_forms", "payload", "properties", "topic")

    def __init__(self, topic: str | bytes, payload: bytes, properties: Properties | None = None) -> None:
        self.topic = topic.encode() if isinstance(topic, str) else topic
        self.payload = payload
        self.properties = properties
        self._forms: dict[tuple[int, bool, bool, int], tuple[bytes, bytes]] = {}

    def encode(
        self, qos: int, retain: bool, protocol_level: int, packet_id: int | None = None, dup: bool = False
    ) -> bytes:
        """Encode the PUBLISH for one subscriber.

        Args:
            qos: The delivery QoS (the minimum of the message's and the subscription's [MQTT-3.8.4-8]).
            retain: The RETAIN flag as delivered.
            protocol_level: The subscriber's protocol level.
            packet_id: Required at QoS 1 and 2 [MQTT-2.2.1-2].
            dup: The DUP flag (a redelivery) [MQTT-3.3.1-1].

        Returns:
            The encoded packet.

        Raises:
            ValueError: Inconsistent QoS, packet identifier and DUP.
        """
        key = (qos, retain, dup, protocol_level)
        form = self._forms.get(key)
        if form is None:
            form = self._forms[key] = self._form(qos, retain, dup, protocol_level)
        if not qos:
            if packet_id is not None:
                raise ValueError("QoS 0 PUBLISH has no packet identifier [MQTT-2.2.1-2]")
            return form[0]
        if not packet_id or packet_id > 0xFFFF:
            raise ValueError(f"QoS {qos} PUBLISH needs a packet identifier in 1..65535, got {packet_id!r}")
        return b"".join((form[0], UINT16.pack(packet_id), form[1]))

    def _form(self, qos: int, retain: bool, dup: bool, level: int) -> tuple[bytes, bytes]:
        if not qos:
            return encode_publish(self.topic, self.payload, 0, retain, dup, None, self.properties, level), b""
        if qos > 2:
            raise ValueError(f"QoS {qos} does not exist")
        props = encode_properties(self.properties, PacketType.PUBLISH) if level == PROTOCOL_V5 else b""
        remaining = 4 + len(self.topic) + len(props) + len(self.payload)
        first = 0x30 | qos << 1 | retain | dup << 3
        return publish_head(first, self.topic, remaining), props + self.payload
