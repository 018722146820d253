"""Micro-benchmark of the PUBLISH hot path: ns per decode and per encode, QoS 0 and 1, MQTT 3.1.1 and 5.0.

Run with ``python bench/codec_bench.py`` (or ``PYTHONPATH=src`` without an installed package). Decoding goes
through :class:`PacketReader` with a batch of packets per ``feed`` call, as the broker sees a socket read;
``encode_publish`` gets a pre-encoded topic; ``encode`` gets a :class:`Publish`; ``PublishFanout.encode`` is the
per-subscriber cost once a message's form is cached. 5.0 is measured without properties and with one
(message expiry interval). Each figure
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


def _measure(level: int, qos: int, properties: Properties | None) -> tuple[float, float, float, float]:
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
    return (
        _best_ns("reader.feed(stream)", namespace, 200, BATCH),
        _best_ns("encode_publish(topic, payload, qos, False, False, packet_id, properties, level)", namespace, 20_000),
        _best_ns("encode(packet, level)", namespace, 20_000),
        _best_ns("fanout.encode(qos, False, level, packet_id)", namespace, 20_000),
    )


def main() -> None:
    """Print a table: one row per protocol level, QoS and property set; ns per packet."""
    print(f"PUBLISH, topic {len(TOPIC)} bytes, payload {len(PAYLOAD)} bytes; decode in batches of {BATCH}")
    print("version  QoS  properties  | decode | encode_publish | encode(Publish) | PublishFanout.encode")
    cases = [(PROTOCOL_V311, None), (PROTOCOL_V5, None), (PROTOCOL_V5, Properties(message_expiry_interval=60))]
    for level, properties in cases:
        for qos in (0, 1):
            decode_ns, fast_ns, encode_ns, fanout_ns = _measure(level, qos, properties)
            version = "5.0" if level == PROTOCOL_V5 else "3.1.1"
            props = "expiry" if properties else "none"
            print(
                f"{version:7}  {qos:3}  {props:10}  | {decode_ns:6.0f} | {fast_ns:14.0f} | {encode_ns:15.0f} | "
                f"{fanout_ns:20.0f}"
            )


if __name__ == "__main__":
    main()
