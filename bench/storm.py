"""Connection storms: many MQTT clients connecting at once, each timed from its first SYN to its CONNACK.

:func:`run_storm` spreads the clients over worker processes (each on uvloop when installed). Every
worker opens its clients with at most ``concurrency`` handshakes in flight (``0``: all at once, as a
fleet reconnecting after a restart does), records when each CONNACK arrived relative to a start
signal shared by all workers, keeps the connections open while the caller measures (``hold``), then
closes them. A client that gets no CONNACK within ``deadline`` seconds counts as failed.

Connects per second = CONNACKs received / (start → last CONNACK).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from loadgen import _CTX, describe, run_loop
from wire import BenchClient, close_client, connect_packet

Credentials = tuple[str | None, str | None]
"""(user name, password) of one client; ``(None, None)`` is anonymous."""


@dataclass(slots=True)
class StormResult:
    """What a storm achieved."""

    clients: int
    connected: int
    seconds: float
    """Start signal → last CONNACK."""
    p50: float
    p99: float
    """Seconds from a client's first SYN to its CONNACK."""
    measured: Any = None
    """What the caller's ``hold`` returned while the clients were connected."""
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """CONNACKs per second."""
        return self.connected / self.seconds if self.seconds > 0 else 0.0


def source_address(index: int) -> tuple[str, int] | None:
    """The loopback address client ``index`` connects from: the kernel's choice for the first 20,000 clients,
    then 127.0.0.2, 127.0.0.3, … for each further 20,000.

    One source address has only the ephemeral port range (about 28,000 ports) to connect to one broker port. The
    first clients are not bound before connecting: a port picked at bind time cannot be one still in TIME_WAIT from
    an earlier run, which a port picked at connect time can.
    """
    return None if index < 20_000 else (f"127.0.0.{1 + index // 20_000}", 0)


async def _one(port: int, index: int, credentials: Credentials, deadline: float) -> BenchClient:
    loop = asyncio.get_running_loop()
    _, client = await asyncio.wait_for(
        loop.create_connection(BenchClient, "127.0.0.1", port, local_addr=source_address(index)), deadline
    )
    assert client.transport is not None
    username, password = credentials
    client.transport.write(connect_packet(f"storm-{index}", username=username, password=password))
    code = await asyncio.wait_for(client.connack, deadline)
    if code != 0:
        client.transport.close()
        raise ConnectionError(f"CONNACK return code {code}")
    return client


async def _worker_main(
    port: int,
    indexes: Sequence[int],
    credentials: Sequence[Credentials],
    concurrency: int,
    deadline: float,
    signals: tuple[Any, Any, Any, Any],
) -> None:
    ready, go, results, stop = signals
    gate = asyncio.Semaphore(concurrency or len(credentials))
    clients: list[BenchClient] = []
    latencies: list[float] = []
    done_at: list[float] = []
    failures: list[str] = []

    async def one(index: int, creds: Credentials) -> None:
        async with gate:
            began = time.monotonic()
            try:
                client = await _one(port, index, creds, deadline)
            except (OSError, TimeoutError, ConnectionError) as exc:
                failures.append(describe(exc))
                return
            now = time.monotonic()
            clients.append(client)
            latencies.append(now - began)
            done_at.append(now)

    ready.put(("ready", None))
    while not go.is_set():
        await asyncio.sleep(0.005)
    began = time.monotonic()
    await asyncio.gather(*(one(i, c) for i, c in zip(indexes, credentials, strict=True)))
    results.put(("done", (began, latencies, done_at, failures[:3], len(failures))))
    while not stop.is_set():
        await asyncio.sleep(0.1)
    for client in clients:
        close_client(client)
    await asyncio.sleep(0.5)


def _worker(*args: Any) -> None:
    results = args[-1][2]
    try:
        run_loop(_worker_main(*args))
    except Exception as exc:
        results.put(("error", describe(exc)))


def _percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def run_storm(
    port: int,
    credentials: Sequence[Credentials],
    *,
    procs: int = 2,
    concurrency: int = 0,
    deadline: float = 10.0,
    hold: Callable[[int], Any] | None = None,
) -> StormResult:
    """Connect one client per entry of ``credentials`` to 127.0.0.1:``port``; see the module docstring."""
    ready: Any = _CTX.Queue()
    go: Any = _CTX.Event()
    results: Any = _CTX.Queue()
    stop: Any = _CTX.Event()
    groups = [range(i, len(credentials), procs) for i in range(procs)]
    processes = [
        _CTX.Process(
            target=_worker,
            args=(
                port,
                list(g),
                [credentials[i] for i in g],
                concurrency,
                deadline,
                (ready, go, results, stop),
            ),
            daemon=True,
        )
        for g in groups
    ]
    for process in processes:
        process.start()
    errors: list[str] = []
    latencies: list[float] = []
    done_at: list[float] = []
    starts: list[float] = []
    failed = 0
    measured: Any = None
    try:
        for _ in processes:
            ready.get(timeout=30)
        go.set()
        for _ in processes:
            try:
                kind, value = results.get(timeout=deadline + 60)
            except queue.Empty:
                errors.append("storm workers did not finish in time")
                break
            if kind == "error":
                errors.append(value)
                continue
            worker_start, worker_latencies, worker_done, worker_errors, worker_failed = value
            starts.append(worker_start)
            latencies += worker_latencies
            done_at += worker_done
            errors += worker_errors
            failed += worker_failed
        if hold is not None:
            time.sleep(1.0)
            measured = hold(len(latencies))
    finally:
        stop.set()
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
        with contextlib.suppress(Exception):
            ready.close()
            results.close()
    seconds = (max(done_at) - min(starts)) if done_at else float("nan")
    if failed:
        errors.insert(0, f"{failed:,} of {len(credentials):,} got no CONNACK")
    return StormResult(
        len(credentials),
        len(latencies),
        seconds,
        _percentile(latencies, 0.5),
        _percentile(latencies, 0.99),
        measured,
        errors,
    )
