"""Broker state persistence benchmark: what each MQTTHUB_BROKER_PERSISTENCE mode costs, beside mosquitto.

Three loads, each against the embedded broker (uvloop when installed) with persistence ``off``,
``periodic`` (1 s) and ``sync``, and against mosquitto with ``persistence false`` and
``persistence true`` (``autosave_interval 1``, its closest equivalent of ``periodic``; mosquitto has
no mode that stores a message before acknowledging it):

* ``offline queue``: one QoS 1 publisher (100 in flight) to a persistent 3.1.1 session that is
  offline, so every message is held for it (the broker's queue limit is raised above the message
  count on both brokers); then the subscriber comes back and drains its queue;
* ``retained``: one QoS 1 publisher (100 in flight) of retained messages over 1,000 topics;
* ``online``: one QoS 1 publisher to one online persistent subscriber (in-flight state only).

Figures are acknowledged publishes per second (``drain``: messages received per second). Every run
is bounded by a message count and a time limit.

Usage::

    .venv/bin/python bench/persistence_bench.py [--messages 20000] [--quick] [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from broker_bench import machine
from brokers import Target, cpu_seconds, started
from wire import BenchClient, close_client, open_client, publish_packet, subscribe

TIMEOUT = 120.0
INFLIGHT = 100
PAYLOAD = bytes(64)
DOC = "docs/benchmarks.md"
START = "<!-- persistence-bench:start -->"
END = "<!-- persistence-bench:end -->"

TARGETS = [
    Target("embedded-off", "mqtthub, persistence off", uvloop=True, persistence="off"),
    Target("embedded-periodic", "mqtthub, periodic (1 s)", uvloop=True, persistence="periodic"),
    Target("embedded-sync", "mqtthub, sync", uvloop=True, persistence="sync"),
    Target("mosquitto", "mosquitto, persistence false", persistence="off"),
    Target("mosquitto", "mosquitto, persistence true (autosave 1 s)", persistence="true"),
]


@dataclass(slots=True)
class Result:
    """One load against one broker."""

    publish_rate: float
    drain_rate: float | None = None
    cpu_us: float = 0.0
    """Broker CPU time (every thread, user and system) per message, in microseconds."""


async def _publish_all(client: BenchClient, topic: Callable[[int], str], count: int, *, retain: bool) -> float:
    """Publish ``count`` QoS 1 messages with ``INFLIGHT`` unacknowledged at most; return messages/s."""
    transport = client.transport
    assert transport is not None
    flag = 0x01 if retain else 0x00
    started_at = time.monotonic()
    sent = 0
    while sent < count:
        room = INFLIGHT - (sent - client.acked)
        if room <= 0:
            await asyncio.wait_for(client.wait_acked(sent - INFLIGHT + 1), TIMEOUT)
            continue
        batch = []
        for index in range(sent, min(count, sent + room)):
            packet = bytearray(publish_packet(topic(index), PAYLOAD, 1, packet_id=index % 65535 + 1))
            packet[0] |= flag
            batch.append(bytes(packet))
        transport.write(b"".join(batch))
        sent += len(batch)
        await client.drain()
    await asyncio.wait_for(client.wait_acked(count), TIMEOUT)
    return count / (time.monotonic() - started_at)


async def _wait_received(client: BenchClient, count: int) -> None:
    deadline = time.monotonic() + TIMEOUT
    while client.received < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"received {client.received} of {count}")
        await asyncio.sleep(0.01)


async def offline_queue(port: int, count: int) -> Result:
    """See the module docstring."""
    subscriber = await open_client(port, "persist-sub", clean=False)
    await subscribe(subscriber, "bench/q", 1)
    close_client(subscriber)
    await asyncio.sleep(0.2)
    publisher = await open_client(port, "persist-pub")
    rate = await _publish_all(publisher, lambda _: "bench/q", count, retain=False)
    close_client(publisher)
    started_at = time.monotonic()
    subscriber = await open_client(port, "persist-sub", clean=False)
    await _wait_received(subscriber, count)
    drain = count / (time.monotonic() - started_at)
    close_client(subscriber)
    return Result(rate, drain)


async def retained(port: int, count: int) -> Result:
    """See the module docstring."""
    publisher = await open_client(port, "persist-retain")
    rate = await _publish_all(publisher, lambda index: f"bench/r/{index % 1000}", count, retain=True)
    close_client(publisher)
    return Result(rate)


async def online(port: int, count: int) -> Result:
    """See the module docstring."""
    subscriber = await open_client(port, "persist-online", clean=False)
    await subscribe(subscriber, "bench/o", 1)
    publisher = await open_client(port, "persist-online-pub")
    rate = await _publish_all(publisher, lambda _: "bench/o", count, retain=False)
    await _wait_received(subscriber, count)
    close_client(publisher)
    close_client(subscriber)
    return Result(rate)


LOADS = {"offline queue": offline_queue, "retained": retained, "online": online}


def run(target: Target, load: str, count: int) -> Result:
    """Start a fresh broker for one load, run it, stop the broker."""
    with started(target, max_queued=count * 2) as broker:
        runner = asyncio.run
        with contextlib.suppress(ImportError):
            import uvloop

            runner = uvloop.run
        cpu_before = cpu_seconds(broker.pid)
        result = runner(LOADS[load](broker.port, count))
        result.cpu_us = (cpu_seconds(broker.pid) - cpu_before) / count * 1e6
        return result


def render(results: dict[str, dict[str, Result]], count: int, runs: int) -> str:
    """The Markdown block for docs/benchmarks.md."""
    loads = os.getloadavg()
    lines = [START, "", f"Measured with `bench/persistence_bench.py --messages {count} --runs {runs}` (best run).", ""]
    lines += [f"- {name}: {value}" for name, value in machine().items()]
    lines += [f"- Load average at the end: {loads[0]:.2f}, {loads[1]:.2f}, {loads[2]:.2f}", ""]
    lines += [
        "| broker | offline queue: publish msg/s | drain msg/s | CPU µs/msg | retained: msg/s | CPU µs/msg "
        "| online: msg/s | CPU µs/msg |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, row in results.items():
        queue, kept, live = row["offline queue"], row["retained"], row["online"]
        drain = f"{queue.drain_rate:,.0f}" if queue.drain_rate is not None else "-"
        cells = [label, f"{queue.publish_rate:,.0f}", drain, f"{queue.cpu_us:.1f}"]
        cells += [f"{kept.publish_rate:,.0f}", f"{kept.cpu_us:.1f}", f"{live.publish_rate:,.0f}", f"{live.cpu_us:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", END]
    return "\n".join(lines)


def write_doc(block: str) -> None:
    """Replace the marked block in docs/benchmarks.md."""
    with open(DOC, encoding="utf-8") as file:
        text = file.read()
    if START not in text:
        raise SystemExit(f"{DOC} has no {START} marker")
    before, rest = text.split(START, 1)
    after = rest.split(END, 1)[1]
    with open(DOC, "w", encoding="utf-8") as file:
        file.write(before + block + after)


def main() -> None:
    """Run every load against every target; print (and with --write, store) the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true", help="1,000 messages: a smoke test")
    parser.add_argument("--runs", type=int, default=2, help="runs per cell; the best is kept (shared machines)")
    parser.add_argument("--write", action="store_true", help=f"write the table into {DOC}")
    args = parser.parse_args()
    count = 1_000 if args.quick else args.messages
    results: dict[str, dict[str, Result]] = {}
    for target in TARGETS:
        results[target.label] = {}
        for load in LOADS:
            runs = [run(target, load, count) for _ in range(args.runs)]
            result = max(runs, key=lambda r: r.publish_rate)
            if result.drain_rate is not None:
                result.drain_rate = max(r.drain_rate or 0.0 for r in runs)
            result.cpu_us = min(r.cpu_us for r in runs)
            results[target.label][load] = result
            rate = f"{result.publish_rate:10,.0f} msg/s {result.cpu_us:6.1f} us/msg"
            print(f"{target.label:45} {load:14} {rate}", flush=True)
    block = render(results, count, args.runs)
    print(block)
    if args.write:
        write_doc(block)


if __name__ == "__main__":
    main()
