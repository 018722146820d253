"""Micro-benchmark of the PUBLISH hot path: ns per decode and per encode, QoS 0 and 1, MQTT 3.1.1 and 5.0.

Run with ``PYTHONPATH=src python bench/codec_bench.py``. Decoding goes through :class:`PacketReader` with a
batch of packets per ``feed`` call, as the broker sees a socket read; encoding uses ``encode_publish`` with a
pre-encoded topic, as fan-out does, and ``encode`` on a :class:`Publish`.
"""

from __future__ import annotations

import timeit

from mqtthub.mqtt import PROTOCOL_V5, PROTOCOL_V311, PacketReader, Properties, Publish, encode, encode_publish

TOPIC = "devices/3f2a9c/telemetry/temperature"
PAYLOAD = b'{"value": 21.5, "unit": "C", "ts": 1732358400}'
BATCH = 100


def _best_ns(statement: object, number: int, per_call: int = 1) -> float:
    runs = timeit.repeat(statement, number=number, repeat=5)  # type: ignore[call-overload]
    return min(runs) / (number * per_call) * 1e9  # type: ignore[no-any-return]


def main() -> None:
    """Print one line per (operation, protocol level, QoS)."""
    topic_bytes = TOPIC.encode()
    print(f"topic {len(TOPIC)} bytes, payload {len(PAYLOAD)} bytes, decode batches of {BATCH}")
    for level, name in ((PROTOCOL_V311, "3.1.1"), (PROTOCOL_V5, "5.0")):
        for qos in (0, 1):
            packet_id = 42 if qos else None
            properties = Properties(message_expiry_interval=60) if level == PROTOCOL_V5 else None
            packet = Publish(TOPIC, PAYLOAD, qos, packet_id=packet_id, properties=properties)
            wire = encode(packet, level)
            stream = wire * BATCH
            reader = PacketReader(protocol_level=level)
            assert len(reader.feed(stream)) == BATCH
            decode_ns = _best_ns(lambda: reader.feed(stream), 200, BATCH)
            fast_ns = _best_ns(
                lambda: encode_publish(topic_bytes, PAYLOAD, qos, False, False, packet_id, None, level), 20_000
            )
            props_ns = _best_ns(
                lambda: encode_publish(topic_bytes, PAYLOAD, qos, False, False, packet_id, properties, level), 20_000
            )
            encode_ns = _best_ns(lambda: encode(packet, level), 20_000)
            print(
                f"MQTT {name:5} QoS {qos}: decode {decode_ns:6.0f} ns | encode_publish {fast_ns:5.0f} ns "
                f"(with properties {props_ns:5.0f} ns) | encode(Publish) {encode_ns:5.0f} ns"
            )


if __name__ == "__main__":
    main()
