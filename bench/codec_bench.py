"""Micro-benchmark of the PUBLISH hot path: ns per decode and per encode, QoS 0 and 1, MQTT 3.1.1 and 5.0.

Run with ``python bench/codec_bench.py`` (or ``PYTHONPATH=src`` without an installed package). Decoding goes
through :class:`PacketReader` with a batch of packets per ``feed`` call, as the broker sees a socket read;
``encode_publish`` gets a pre-encoded topic; ``encode`` gets a :class:`Publish`; ``PublishFanout.encode`` is the
per-subscriber cost once a message's form is cached (5.0 figures with one property, message expiry). Each figure
is the best of several runs, which filters out noise from other processes.
"""

from __future__ import annotations

import timeit
from typing import Any

from mqtthub.mqtt import (
    PROTOCOL_V5,
    PROTOCOL_V311,
    PacketReader,
    Properties,
    Publish,
    PublishFanout,
    encode,
    encode_publish,
)

TOPIC = "devices/3f2a9c/telemetry/temperature"
PAYLOAD = b'{"value": 21.5, "unit": "C", "ts": 1732358400}'
BATCH = 100
REPEAT = 7


def _best_ns(statement: str, namespace: dict[str, Any], number: int, per_call: int = 1) -> float:
    runs = timeit.repeat(statement, number=number, repeat=REPEAT, globals=namespace)
    return min(runs) / (number * per_call) * 1e9


def main() -> None:
    """Print one line per (protocol level, QoS)."""
    print(f"topic {len(TOPIC)} bytes, payload {len(PAYLOAD)} bytes, decode in batches of {BATCH} per feed()")
    for level, name in ((PROTOCOL_V311, "3.1.1"), (PROTOCOL_V5, "5.0")):
        for qos in (0, 1):
            properties = Properties(message_expiry_interval=60) if level == PROTOCOL_V5 else None
            packet = Publish(TOPIC, PAYLOAD, qos, packet_id=42 if qos else None, properties=properties)
            stream = encode(packet, level) * BATCH
            namespace: dict[str, Any] = {
                "reader": PacketReader(protocol_level=level),
                "stream": stream,
                "encode": encode,
                "encode_publish": encode_publish,
                "packet": packet,
                "topic": TOPIC.encode(),
                "payload": PAYLOAD,
                "qos": qos,
                "packet_id": packet.packet_id,
                "properties": properties,
                "level": level,
                "fanout": PublishFanout(TOPIC, PAYLOAD, properties),
            }
            assert len(namespace["reader"].feed(stream)) == BATCH
            decode_ns = _best_ns("reader.feed(stream)", namespace, 200, BATCH)
            fast = "encode_publish(topic, payload, qos, False, False, packet_id, {}, level)"
            fast_ns = _best_ns(fast.format("None"), namespace, 20_000)
            props_ns = _best_ns(fast.format("properties"), namespace, 20_000)
            encode_ns = _best_ns("encode(packet, level)", namespace, 20_000)
            fanout_ns = _best_ns("fanout.encode(qos, False, level, packet_id)", namespace, 20_000)
            print(
                f"MQTT {name:5} QoS {qos}: decode {decode_ns:5.0f} ns | encode_publish {fast_ns:5.0f} ns, "
                f"with properties {props_ns:5.0f} ns | encode(Publish) {encode_ns:5.0f} ns | "
                f"PublishFanout.encode {fanout_ns:4.0f} ns"
            )


if __name__ == "__main__":
    main()
