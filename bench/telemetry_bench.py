"""End-to-end telemetry benchmark: devices publish QoS 1 datastream messages through the broker into the database.

Every PUBACK is sent by the broker only after the message's ingest batch has committed,
so the acknowledgement latency measured here is the full path: TCP → broker → validation
→ group commit → PUBACK. Two processes share the machine:

* the **server**: the same pieces the hub composes (database with migrations, the
  telemetry service, the embedded broker with the real database authenticator and topic
  authorizer), seeded with N devices, each with its own token and telemetry definition.
  It runs on the default asyncio loop, as ``mqtthub serve`` does (``TELEMETRY_BENCH_PROFILE=<file>``
  writes a cProfile of it);
* the **load** (on uvloop when installed): N raw MQTT 3.1.1 connections (one per device) with a window of QoS 1
  messages in flight each, either as fast as acknowledgements allow (``--rate 0``) or at a
  fixed total rate.

Reported: sustained acknowledged msg/s over the measurement window (after a warm-up),
p50/p99/max acknowledgement latency, the rows the database holds afterwards (it must be at
least the number of acknowledgements), and the server process's CPU time (all threads) per
stored message, which is steadier than wall-clock numbers on a shared machine. PostgreSQL is started from the installed
binaries in a temporary directory with its durable defaults (``fsync=on``,
``synchronous_commit=on``); SQLite runs in WAL mode with ``synchronous=NORMAL``, as the hub does.

Usage::

    .venv/bin/python bench/telemetry_bench.py                       # both databases, max rate and 5,000 msg/s
    .venv/bin/python bench/telemetry_bench.py --db sqlite --devices 100 --seconds 20 --rate 0
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import multiprocessing
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from broker_bench import machine
from loadgen import run_loop
from report import finite, save, update
from tests.support.postgres import _as_postgres_user, find_postgres_bin, free_port

WINDOW = 50
WARMUP = 2.0


# --- server process --------------------------------------------------------------------------------


async def _serve(url: str, devices: int, pipe: Connection) -> None:
    from sqlalchemy import func, select

    from mqtthub.auth.broker_hooks import DatabaseAuthenticator, TopicAuthorizer
    from mqtthub.broker import Broker, BrokerConfig, ListenerConfig
    from mqtthub.config import Settings
    from mqtthub.crypto import SecretBox
    from mqtthub.db import Database
    from mqtthub.db.migrate import upgrade
    from mqtthub.models import Device, DeviceToken, Organization, TelemetryDefinition, TelemetryValue
    from mqtthub.telemetry import TelemetryService

    await upgrade(url)
    settings = Settings(_env_file=None, database_url=url, telemetry_retention_days=0, max_inflight=WINDOW * 2)
    secrets = SecretBox("bench-secret-key-" + "x" * 32)
    seeded: list[tuple[str, str, int]] = []
    async with Database(url) as database:
        async with database.session() as session:
            organization = Organization(name="bench", short_id="bench001")
            session.add(organization)
            await session.flush()
            for n in range(devices):
                device = Device(organization_id=organization.id, name=f"d{n}")
                session.add(device)
                await session.flush()
                token = f"mqh_dev_bench{n:035d}"
                session.add(DeviceToken(device_id=device.id, token_hash=secrets.hash_token(token), hint=token[:12]))
                definition = TelemetryDefinition(
                    organization_id=organization.id, device_id=device.id, key="temperature", unit="C"
                )
                session.add(definition)
                await session.flush()
                seeded.append((device.id, token, definition.id))
        telemetry = TelemetryService(database, settings)
        broker = Broker(
            BrokerConfig(
                listeners=(ListenerConfig(name="tcp", port=0),),
                sys_interval=0,
                receive_maximum=WINDOW * 2,
                max_connections=devices + 10,
                max_connection_rate=100_000,
            ),
            authenticator=DatabaseAuthenticator(database, secrets, settings),
            authorizer=TopicAuthorizer(),
            sink=telemetry.sink,
            observer=telemetry.observer,
        )
        async with telemetry, broker:
            pipe.send((broker.addresses["tcp"][1], seeded))
            cpu_start, written_start = time.process_time(), telemetry.writer.written
            await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
            cpu = time.process_time() - cpu_start
            stats = telemetry.stats()
            written = stats["written"] - written_start
        async with database.session() as session:
            rows = await session.scalar(select(func.count()).select_from(TelemetryValue))
        pipe.send({"rows": rows, "batches": stats["batches"], "cpu_us": 1e6 * cpu / max(written, 1)})


def _server_main(url: str, devices: int, pipe: Connection) -> None:
    # The default asyncio loop, as ``mqtthub serve`` runs (see docs/benchmarks.md on uvloop and the broker).
    profile_to = os.environ.get("TELEMETRY_BENCH_PROFILE")
    if not profile_to:
        asyncio.run(_serve(url, devices, pipe))
        return
    import cProfile

    with cProfile.Profile() as profiler:
        asyncio.run(_serve(url, devices, pipe))
    profiler.dump_stats(profile_to)


# --- load process ----------------------------------------------------------------------------------


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("!H", len(data)) + data


def _remaining(length: int) -> bytes:
    out = bytearray()
    while True:
        byte, length = length % 128, length // 128
        out.append(byte | (0x80 if length else 0))
        if not length:
            return bytes(out)


def _connect_packet(client_id: str, username: str, password: str) -> bytes:
    body = _string("MQTT") + bytes([4, 0xC2]) + struct.pack("!H", 600)
    body += _string(client_id) + _string(username) + _string(password)
    return bytes([0x10]) + _remaining(len(body)) + body


@dataclass
class LoadStats:
    """Acknowledgements and their latencies (ns) within the measurement window."""

    measure_from: float = 0.0
    measure_to: float = 0.0
    acked: int = 0
    refused: int = 0
    latencies: list[int] = field(default_factory=list)


class DeviceClient(asyncio.Protocol):
    """One device: CONNECT, then QoS 1 PUBLISHes with up to ``WINDOW`` in flight."""

    def __init__(self, device: tuple[str, str, int], index: int, stats: LoadStats, credits: Credits) -> None:
        device_id, token, definition_id = device
        self.connect_packet = _connect_packet(f"bench-{index}", device_id, token)
        topic = _string(f"devices/{device_id}/datastream")
        payload = f'{{"value": 23.5, "telemetryDataId": {definition_id}}}'.encode()
        self.head = bytes([0x32]) + _remaining(len(topic) + 2 + len(payload)) + topic
        self.payload = payload
        self.stats = stats
        self.credits = credits
        self.sent: dict[int, int] = {}
        self.next_id = 1
        self.buffer = b""
        self.ready = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.running = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.connect_packet)

    def fill(self) -> None:
        if self.transport is None or not self.running:
            return
        chunks = []
        while len(self.sent) < WINDOW and self.credits.take():
            packet_id = self.next_id
            self.next_id = 1 if packet_id == 65535 else packet_id + 1
            self.sent[packet_id] = time.monotonic_ns()
            chunks.append(self.head + struct.pack("!H", packet_id) + self.payload)
        if chunks:
            self.transport.write(b"".join(chunks))

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data
        pos = 0
        now = time.monotonic_ns()
        stats = self.stats
        measuring = stats.measure_from <= now / 1e9 <= stats.measure_to
        while len(buffer) - pos >= 4:
            kind = buffer[pos]
            if kind == 0x20:
                if buffer[pos + 3] != 0:
                    raise SystemExit(f"CONNACK refused with code {buffer[pos + 3]}")
                if not self.ready.done():
                    self.ready.set_result(None)
            elif kind == 0x40:
                packet_id = (buffer[pos + 2] << 8) | buffer[pos + 3]
                started = self.sent.pop(packet_id, None)
                if started is not None and measuring:
                    stats.acked += 1
                    stats.latencies.append(now - started)
            pos += 4
        self.buffer = buffer[pos:]
        self.fill()

    def connection_lost(self, exc: Exception | None) -> None:
        self.running = False
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("connection closed before CONNACK"))


class Credits:
    """Send permits: unlimited, or released at ``rate`` per second by a ticker."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.available = 0.0

    def take(self) -> bool:
        if self.rate <= 0:
            return True
        if self.available >= 1:
            self.available -= 1
            return True
        return False


async def _load(port: int, devices: list[tuple[str, str, int]], rate: float, seconds: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    stats = LoadStats()
    credits = Credits(rate)
    clients: list[DeviceClient] = []
    for index, device in enumerate(devices):
        _, client = await loop.create_connection(
            functools.partial(DeviceClient, device, index, stats, credits), "127.0.0.1", port
        )
        clients.append(client)
    await asyncio.gather(*(client.ready for client in clients))
    start = time.monotonic()
    stats.measure_from = start + WARMUP
    stats.measure_to = stats.measure_from + seconds
    last = start
    while time.monotonic() < stats.measure_to:
        if rate > 0:
            now = time.monotonic()
            credits.available = min(credits.available + rate * (now - last), rate * 0.05)
            last = now
        for client in clients:
            client.fill()
        await asyncio.sleep(0.002 if rate > 0 else 0.05)
    for client in clients:
        client.running = False
    await asyncio.sleep(1.0)
    for client in clients:
        if client.transport is not None:
            client.transport.close()
    latencies = sorted(stats.latencies)

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] / 1e6 if latencies else float("nan")

    return {
        "acked": stats.acked,
        "rate": stats.acked / seconds,
        "p50": pct(0.50),
        "p99": pct(0.99),
        "max": latencies[-1] / 1e6 if latencies else float("nan"),
    }


def _load_main(port: int, devices: list[tuple[str, str, int]], rate: float, seconds: float, pipe: Connection) -> None:
    pipe.send(run_loop(_load(port, devices, rate, seconds)))


# --- databases and orchestration -----------------------------------------------------------------


@contextlib.contextmanager
def durable_postgres() -> Iterator[str]:
    """A throw-away PostgreSQL with durable settings; yields a URL of a fresh database."""
    bindir = find_postgres_bin()
    if bindir is None:
        raise SystemExit("PostgreSQL is not installed")
    workdir = Path(tempfile.mkdtemp(prefix="mqtthub-bench-pg-"))
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres", "postgres")
    datadir = workdir / "data"
    subprocess.run(
        _as_postgres_user([str(bindir / "initdb"), "-D", str(datadir), "-U", "postgres", "-A", "trust"]),
        check=True,
        capture_output=True,
    )
    port = free_port()
    log = (workdir / "log").open("wb")
    command = [str(bindir / "postgres"), "-D", str(datadir), "-p", str(port), "-h", "127.0.0.1", "-k", str(workdir)]
    process = subprocess.Popen(
        _as_postgres_user([*command, "-c", "fsync=on", "-c", "synchronous_commit=on"]), stdout=log, stderr=log
    )
    try:
        for _ in range(150):
            ready = subprocess.run(
                [str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres"], capture_output=True
            )
            if ready.returncode == 0:
                break
            time.sleep(0.2)
        subprocess.run(
            [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "bench"], check=True
        )
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/bench"
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


def run_case(url: str, devices: int, rate: float, seconds: float) -> dict[str, Any]:
    """One server + one load process; returns the load's numbers and the server's row count."""
    ctx = multiprocessing.get_context("spawn")
    server_end, server_pipe = ctx.Pipe()
    server = ctx.Process(target=_server_main, args=(url, devices, server_pipe), daemon=True)
    server.start()
    port, seeded = server_end.recv()
    load_end, load_pipe = ctx.Pipe()
    load = ctx.Process(target=_load_main, args=(port, seeded, rate, seconds, load_pipe), daemon=True)
    load.start()
    result: dict[str, Any] = load_end.recv()
    load.join(30)
    server_end.send("stop")
    result |= server_end.recv()
    server.join(30)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, action="append", help="total msg/s; 0 = as fast as acks allow")
    parser.add_argument(
        "--write", action="store_true", help="store the run in docs/bench/telemetry.json and redraw the report"
    )
    args = parser.parse_args(argv)
    info, load_start = machine(), os.getloadavg()
    rows: list[dict[str, Any]] = []
    rates = args.rate or [0.0, 5000.0]
    databases = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    print(
        "| database | devices | offered rate | acked msg/s | p50 ms | p99 ms | max ms | rows ≥ acks | batches "
        "| server CPU µs/msg |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for database in databases:
        for rate in rates:
            with contextlib.ExitStack() as stack:
                if database == "sqlite":
                    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
                    url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
                else:
                    url = stack.enter_context(durable_postgres())
                r = run_case(url, args.devices, rate, args.seconds)
            offered = "max" if rate <= 0 else f"{rate:,.0f}"
            ok = "yes" if r["rows"] >= r["acked"] else f"NO ({r['rows']})"
            rows.append(
                {
                    "database": database,
                    "rate": rate,
                    "acked_rate": r["rate"],
                    **{key: finite(r[key]) for key in ("p50", "p99", "max", "cpu_us")},
                    "rows_ok": r["rows"] >= r["acked"],
                    "batches": r["batches"],
                }
            )
            print(
                f"| {database} | {args.devices} | {offered} | {r['rate']:,.0f} | {r['p50']:.1f} | {r['p99']:.1f} "
                f"| {r['max']:.1f} | {ok} | {r['batches']:,} | {r['cpu_us']:.0f} |",
                flush=True,
            )
    if args.write:
        run = {
            "machine": info,
            "load": {"start": list(load_start), "end": list(os.getloadavg())},
            "devices": args.devices,
            "seconds": args.seconds,
            "rows": rows,
        }
        print(f"written to {save('telemetry', run)}")
        for path in update():
            print(f"written to {path}")


if __name__ == "__main__":
    main()
