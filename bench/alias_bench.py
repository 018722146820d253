"""Outbound topic aliases: bytes on the wire and broker CPU per delivered message, with and without them.

One 3.1.1 publisher sends QoS 0 messages (64-byte payloads) round-robin over a few topics of a given length
to the embedded broker (``bench/run_broker.py``, its own process, default asyncio loop); ``--subscribers``
MQTT 5.0 subscribers on ``#`` receive them, once announcing a Topic Alias Maximum (the broker then names
each topic once and sends a two-byte alias after) and once not. Reported per topic length: bytes a
subscriber received per message, delivered msg/s (all subscribers), and the broker's CPU time per delivered
message.

Usage::

    .venv/bin/python bench/alias_bench.py [--messages 100000] [--topics 10] [--lengths 16 64 256] [--subscribers 1]
        [--repeat 3]

Each figure is the best of ``--repeat`` runs (each on a freshly started broker), which filters out noise from
other processes on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.brokers import Target, cpu_seconds, started
from bench.wire import BenchClient, _length, _string, close_client, open_client, publish_packet

PAYLOAD = bytes(64)
BATCH = 50
TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class Result:
    """One run: what the subscriber received and what it cost the broker."""

    bytes_per_message: float
    messages_per_second: float
    cpu_us_per_message: float


class CountingClient(BenchClient):
    """A load-generator client that also counts the bytes it receives."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0
        self.done: asyncio.Future[None] | None = None
        self.expected = 0

    def expect(self, count: int) -> asyncio.Future[None]:
        """Count from zero; the returned future resolves once ``count`` PUBLISHes have arrived."""
        self.received = 0
        self.bytes = 0
        self.expected = count
        self.done = asyncio.get_running_loop().create_future()
        return self.done

    def data_received(self, data: bytes) -> None:
        """Count, then frame as the load generator does."""
        self.bytes += len(data)
        super().data_received(data)
        done = self.done
        if done is not None and self.received >= self.expected and not done.done():
            done.set_result(None)


def _connect_v5(client_id: str, alias_maximum: int) -> bytes:
    # Topic Alias Maximum (0x22) in the CONNECT properties [MQTT-3.1.2.11.5]; none at all when 0.
    props = bytes((3, 0x22)) + alias_maximum.to_bytes(2, "big") if alias_maximum else b"\x00"
    body = _string("MQTT") + bytes((5, 0x02)) + (600).to_bytes(2, "big") + props + _string(client_id)
    return bytes((0x10,)) + _length(len(body)) + body


def _subscribe_v5(topic_filter: str) -> bytes:
    body = (1).to_bytes(2, "big") + b"\x00" + _string(topic_filter) + b"\x00"
    return bytes((0x82,)) + _length(len(body)) + body


def _topics(count: int, length: int) -> list[str]:
    return [f"t{index:03d}/".ljust(length, "x") for index in range(count)]


async def _subscriber(port: int, client_id: str, alias_maximum: int) -> CountingClient:
    loop = asyncio.get_running_loop()
    _, subscriber = await loop.create_connection(CountingClient, "127.0.0.1", port)
    assert subscriber.transport is not None
    subscriber.transport.write(_connect_v5(client_id, alias_maximum))
    if await asyncio.wait_for(subscriber.connack, TIMEOUT) != 0:
        raise ConnectionError("subscriber refused")
    subscriber.transport.write(_subscribe_v5("#"))
    await asyncio.wait_for(subscriber.suback, TIMEOUT)
    return subscriber


async def _measure(port: int, pid: int, topics: list[str], messages: int, alias_maximum: int, fan: int) -> Result:
    subscribers = [await _subscriber(port, f"alias-sub-{index}", alias_maximum) for index in range(fan)]
    publisher = await open_client(port, "alias-pub")
    assert publisher.transport is not None
    packets = [publish_packet(topic, PAYLOAD, 0) for topic in topics]
    batch = b"".join(packets[index % len(packets)] for index in range(BATCH))
    done = [subscriber.expect(messages) for subscriber in subscribers]
    cpu_before = cpu_seconds(pid)
    started_at = time.perf_counter()
    for _ in range(messages // BATCH):
        publisher.transport.write(batch)
        await publisher.drain()
    await asyncio.wait_for(asyncio.gather(*done), TIMEOUT)
    elapsed = time.perf_counter() - started_at
    cpu = cpu_seconds(pid) - cpu_before
    close_client(publisher)
    for subscriber in subscribers:
        close_client(subscriber)
    delivered = messages * fan
    received = sum(subscriber.bytes for subscriber in subscribers)
    return Result(received / delivered, delivered / elapsed, cpu / delivered * 1e6)


def _best(results: list[Result]) -> Result:
    return Result(
        min(r.bytes_per_message for r in results),
        max(r.messages_per_second for r in results),
        min(r.cpu_us_per_message for r in results),
    )


def main() -> None:
    """Run every topic length with and without aliases and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--topics", type=int, default=10)
    parser.add_argument("--lengths", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--subscribers", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    messages = args.messages // BATCH * BATCH
    target = Target("mqtthub", "mqtthub (asyncio)")
    print("| topic bytes | subscribers | aliases | bytes/msg received | delivered msg/s | broker CPU µs/msg |")
    print("| --- | --- | --- | --- | --- | --- |")
    for length in args.lengths:
        topics = _topics(args.topics, length)
        for alias_maximum in (0, args.topics):
            runs = []
            for _ in range(args.repeat):
                with started(target) as broker:
                    runs.append(
                        asyncio.run(
                            _measure(broker.port, broker.pid, topics, messages, alias_maximum, args.subscribers)
                        )
                    )
            best = _best(runs)
            print(
                f"| {length} | {args.subscribers} | {'yes' if alias_maximum else 'no'} | {best.bytes_per_message:.1f} "
                f"| {best.messages_per_second:,.0f} | {best.cpu_us_per_message:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
