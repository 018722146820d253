"""The benchmark's load generator: MQTT publishers and subscribers spread over worker processes.

A :class:`Flow` describes one load (publishers, subscribers, QoS, topics, how many
messages, optionally a fixed rate); :func:`run_flow` runs it against a broker on
127.0.0.1 and returns what the subscribers received and when. :func:`hold_idle`
opens many idle connections and keeps them open while the caller measures.

Each worker process runs its own event loop (uvloop when installed) with raw
:class:`wire.BenchClient` protocols. Publishers write pre-encoded packets in
batches; without a rate they write as fast as TCP back-pressure lets them (QoS 1:
within their in-flight window), so the broker's own speed sets the pace.
Throughput is messages received by all subscribers divided by the time from the
first write to the last receipt. Latency samples are receive time minus the
``time.monotonic_ns()`` stamp in the payload: CLOCK_MONOTONIC is one clock for all
processes of a Linux host.

Every load is bounded by a message count and a time limit, and every worker
process is joined or, past its time, terminated.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import queue
import time
from array import array
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from multiprocessing.context import ForkContext, ForkProcess
from typing import Any, TypeVar

from wire import BenchClient, close_client, open_client, publish_template, subscribe

T = TypeVar("T")

BATCH = 50
"""PUBLISH packets per write."""
_QUIET = 3.0
"""Seconds without a message after the publishers are done that end a load."""
_CTX: ForkContext = multiprocessing.get_context("fork")


def run_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on uvloop when it is installed, else on the default asyncio loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


@dataclass(frozen=True, slots=True)
class Flow:
    """One publish/subscribe load.

    ``topic`` is formatted with ``i``, the publisher's index; every subscriber
    subscribes to ``topic_filter`` and is expected to receive every message.
    """

    publishers: int
    subscribers: int
    qos: int
    messages: int
    """Published in total, split evenly over the publishers."""
    topic: str
    topic_filter: str
    subscribe_qos: int = 0
    inflight: int = 100
    """QoS 1: unacknowledged PUBLISHes per publisher."""
    rate: float = 0.0
    """Messages per second in total; 0 for as fast as the broker takes them."""
    latency: bool = False
    payload_size: int = 64
    publisher_procs: int = 1
    subscriber_procs: int = 1
    timeout: float = 30.0


@dataclass(slots=True)
class FlowResult:
    """What one run of a :class:`Flow` achieved."""

    published: int
    expected: int
    delivered: int
    seconds: float
    latencies_ns: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Messages received per second, over all subscribers."""
        return self.delivered / self.seconds if self.seconds > 0 else 0.0


@dataclass(slots=True)
class _Shared:
    sent: Any
    received: Any
    ready: multiprocessing.Queue[tuple[str, Any]]
    results: multiprocessing.Queue[tuple[str, Any]]
    start: Any
    stop: Any


def describe(exc: BaseException) -> str:
    """A one-line account of a client failure."""
    if isinstance(exc, TimeoutError):
        return "no answer from the broker within the time limit"
    return f"{type(exc).__name__}: {exc}"


def _split(total: int, parts: int) -> list[range]:
    parts = max(1, min(parts, total))
    bounds = [total * k // parts for k in range(parts + 1)]
    return [range(bounds[k], bounds[k + 1]) for k in range(parts)]


async def _wait_event(event: Any, timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    return bool(await loop.run_in_executor(None, event.wait, timeout))


# -- publishers ---------------------------------------------------------------------------------------------


async def _publish(client: BenchClient, index: int, quota: int, flow: Flow, shared: _Shared, deadline: float) -> None:
    transport = client.transport
    assert transport is not None
    head, tail, size = publish_template(flow.topic.format(i=index), flow.payload_size, flow.qos)
    padding = bytes(size - 8) if flow.latency else bytes(size)
    plain = head + padding
    full_batch = plain * BATCH
    sent_counts = shared.sent
    interval_ns = int(flow.publishers * 1e9 / flow.rate) if flow.rate else 0
    packet_id = 0
    stamp = b""
    sent = 0
    started = time.monotonic_ns()
    while sent < quota and time.monotonic() < deadline:
        count = min(BATCH, quota - sent)
        if interval_ns:
            now = time.monotonic_ns()
            due = (now - started) // interval_ns + 1
            if due <= sent:
                await asyncio.sleep((started + sent * interval_ns - now) / 1e9)
                continue
            count = min(count, due - sent)
        if flow.qos:
            room = flow.inflight - (sent - client.acked)
            if room <= 0:
                await client.wait_acked(sent - flow.inflight + 1)
                continue
            count = min(count, room)
        if flow.latency:
            stamp = time.monotonic_ns().to_bytes(8, "big")
        if flow.qos:
            body = stamp + tail[len(stamp) :]
            parts: list[bytes] = []
            for _ in range(count):
                packet_id = packet_id % 65535 + 1
                parts += (head, packet_id.to_bytes(2, "big"), body)
            transport.write(b"".join(parts))
        elif flow.latency:
            transport.write((head + stamp + padding) * count)
        else:
            transport.write(full_batch if count == BATCH else plain * count)
        sent += count
        sent_counts[index] = sent
        await client.drain()
        await asyncio.sleep(0)
    if flow.qos:
        with contextlib.suppress(TimeoutError, ConnectionError):
            await asyncio.wait_for(client.wait_acked(sent), max(0.1, deadline - time.monotonic()))


async def _publisher_main(port: int, flow: Flow, indexes: range, shared: _Shared) -> None:
    clients = [await open_client(port, f"bench-pub-{i}") for i in indexes]
    shared.ready.put(("ready", len(clients)))
    if not await _wait_event(shared.start, 120):
        return
    deadline = time.monotonic() + flow.timeout
    quotas = _split(flow.messages, flow.publishers)
    started = time.monotonic_ns()
    await asyncio.gather(
        *(_publish(c, i, len(quotas[i]), flow, shared, deadline) for c, i in zip(clients, indexes, strict=True))
    )
    shared.results.put(("publisher", {"started_ns": started, "sent": sum(shared.sent[i] for i in indexes)}))
    for client in clients:
        close_client(client)


# -- subscribers --------------------------------------------------------------------------------------------


async def _subscriber_main(port: int, flow: Flow, indexes: range, shared: _Shared) -> None:
    clients: list[BenchClient] = []
    received_counts = shared.received
    for i in indexes:
        client = await open_client(port, f"bench-sub-{i}", latencies=array("q") if flow.latency else None)
        await subscribe(client, flow.topic_filter, flow.subscribe_qos)

        def progress(c: BenchClient, slot: int = i) -> None:
            received_counts[slot] = c.received

        client.on_progress = progress
        clients.append(client)
    shared.ready.put(("ready", len(clients)))
    if not await _wait_event(shared.start, 120):
        return
    deadline = time.monotonic() + flow.timeout + 5
    while time.monotonic() < deadline and not shared.stop.is_set():
        if all(c.received >= flow.messages for c in clients):
            break
        await asyncio.sleep(0.02)
    latencies: list[int] = []
    for client in clients:
        if client.latencies is not None:
            latencies.extend(client.latencies)
    shared.results.put(
        (
            "subscriber",
            {
                "received": sum(c.received for c in clients),
                "last_ns": max((c.last_ns for c in clients), default=0),
                "latencies": latencies,
            },
        )
    )
    for client in clients:
        close_client(client)


def _worker(main: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> None:
    shared: _Shared = args[-1]
    try:
        run_loop(main(*args))
    except Exception as exc:
        shared.ready.put(("error", describe(exc)))
        shared.results.put(("error", describe(exc)))


def _start(target: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> ForkProcess:
    process = _CTX.Process(target=_worker, args=(target, *args), daemon=True)
    process.start()
    return process


def _await_ready(shared: _Shared, count: int, timeout: float, errors: list[str]) -> bool:
    deadline = time.monotonic() + timeout
    for _ in range(count):
        try:
            kind, value = shared.ready.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            errors.append("workers did not get ready in time")
            return False
        if kind == "error":
            errors.append(value)
            return False
    return True


def _stop_all(processes: list[ForkProcess]) -> None:
    for process in processes:
        process.join(timeout=5)
        if process.is_alive():
            process.terminate()
            process.join(timeout=5)


def run_flow(port: int, flow: Flow) -> FlowResult:
    """Run one load against the broker on 127.0.0.1:``port``; see the module docstring."""
    shared = _Shared(
        sent=_CTX.RawArray("q", flow.publishers),
        received=_CTX.RawArray("q", flow.subscribers),
        ready=_CTX.Queue(),
        results=_CTX.Queue(),
        start=_CTX.Event(),
        stop=_CTX.Event(),
    )
    errors: list[str] = []
    sub_groups = _split(flow.subscribers, flow.subscriber_procs)
    pub_groups = _split(flow.publishers, flow.publisher_procs)
    processes = [_start(_subscriber_main, port, flow, group, shared) for group in sub_groups]
    reports: list[tuple[str, Any]] = []
    try:
        if _await_ready(shared, len(sub_groups), 60, errors):
            processes += [_start(_publisher_main, port, flow, group, shared) for group in pub_groups]
            if _await_ready(shared, len(pub_groups), 60, errors):
                shared.start.set()
                reports = _collect(shared, len(pub_groups), len(sub_groups), flow.timeout)
    finally:
        shared.stop.set()
        _stop_all(processes)
    errors += [value for kind, value in reports if kind == "error"]
    pubs = [value for kind, value in reports if kind == "publisher"]
    subs = [value for kind, value in reports if kind == "subscriber"]
    delivered = sum(s["received"] for s in subs)
    started = min((p["started_ns"] for p in pubs), default=0)
    finished = max((s["last_ns"] for s in subs), default=0)
    return FlowResult(
        published=sum(p["sent"] for p in pubs),
        expected=flow.messages * flow.subscribers,
        delivered=delivered,
        seconds=(finished - started) / 1e9 if started and finished > started else 0.0,
        latencies_ns=[value for s in subs for value in s["latencies"]],
        errors=errors,
    )


def _collect(shared: _Shared, publishers: int, subscribers: int, timeout: float) -> list[tuple[str, Any]]:
    # Once the publishers are done, subscribers get until nothing has arrived for a while (what is still
    # queued in the broker and the kernel keeps coming; what was dropped never will).
    reports: list[tuple[str, Any]] = []
    deadline = time.monotonic() + timeout + 15
    last_total = -1
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        kinds = [kind for kind, _ in reports]
        if kinds.count("subscriber") + kinds.count("error") >= subscribers and (
            kinds.count("publisher") >= publishers or "error" in kinds
        ):
            break
        total = sum(shared.received)
        if total != last_total:
            last_total, quiet_since = total, time.monotonic()
        if kinds.count("publisher") >= publishers and time.monotonic() - quiet_since > _QUIET:
            shared.stop.set()
        with contextlib.suppress(queue.Empty):
            reports.append(shared.results.get(timeout=0.1))
    return reports


# -- idle connections ---------------------------------------------------------------------------------------


async def _idle_main(port: int, indexes: range, concurrency: int, shared: _Shared) -> None:
    gate = asyncio.Semaphore(concurrency)
    failures: list[str] = []

    async def one(i: int) -> BenchClient | None:
        async with gate:
            try:
                return await open_client(port, f"bench-idle-{i}", timeout=60)
            except (OSError, TimeoutError) as exc:
                failures.append(describe(exc))
                return None

    # One client first: a broker that does not answer fails the scenario at once, not 10,000 times over.
    try:
        first = await open_client(port, f"bench-idle-{indexes[0]}")
    except (OSError, TimeoutError) as exc:
        shared.ready.put(("error", describe(exc)))
        return
    rest = await asyncio.gather(*(one(i) for i in indexes[1:]))
    clients = [first, *(c for c in rest if c is not None)]
    shared.ready.put(("connected", (len(clients), failures[:3])))
    await _wait_event(shared.stop, 300)
    for client in clients:
        close_client(client)
    await asyncio.sleep(0.5)


def hold_idle(port: int, connections: int, measure: Callable[[int], T], *, procs: int = 2) -> tuple[int, T, list[str]]:
    """Open ``connections`` idle clients (CONNECT done, nothing else), call ``measure(open_count)``, close them.

    Returns how many connected, what ``measure`` returned, and the first errors.
    """
    shared = _Shared(
        sent=None, received=None, ready=_CTX.Queue(), results=_CTX.Queue(), start=_CTX.Event(), stop=_CTX.Event()
    )
    groups = _split(connections, procs)
    processes = [_start(_idle_main, port, group, 16, shared) for group in groups]
    opened = 0
    errors: list[str] = []
    try:
        deadline = time.monotonic() + 180
        for _ in groups:
            try:
                kind, value = shared.ready.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                errors.append("idle clients did not connect in time")
                break
            if kind == "error":
                errors.append(value)
                continue
            count, failures = value
            opened += count
            errors += failures
        time.sleep(1.0)
        measured = measure(opened)
    finally:
        shared.stop.set()
        _stop_all(processes)
    return opened, measured, errors
