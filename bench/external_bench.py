"""Per-hub ingest rate in external broker mode: one hub on PostgreSQL behind a 2-node RabbitMQ cluster.

The benchmark boots what the scale-out tests boot (``tests/support/rabbitmq.py``, ``tests/support/postgres.py``,
``tests/support/hubproc.py``): a throw-away PostgreSQL server, a 2-node RabbitMQ cluster and one ``mqtthub serve``
with ``MQTTHUB_BROKER=rabbitmq`` on node 1. AMQP publishers, spread over both nodes, put device readings on
``amq.topic`` of the organization's vhost with the routing key and headers RabbitMQ's MQTT plugin gives a device's
QoS 1 PUBLISH, with publisher confirms. The hub consumes them from the mirrored ingest queue and acknowledges each
only after its database commit. Measured: the rate at which readings appear in the database (committed, counted by
SQL), from the first publish to the last row, whether every reading was stored exactly once, and the hub's CPU time
per reading, which is what sizing a fleet needs. The publishers (Python, a confirm per message) may be slower than
the hub, so the hub is then stopped, ``--backlog`` more readings are published, and a restarted hub's rate through
that backlog is its own ceiling. The run is bounded by ``--readings``, ``--backlog`` and ``--timeout``.

Usage::

    .venv/bin/python bench/external_bench.py                      # 10,000 readings, 4 publishers, 50 devices
    .venv/bin/python bench/external_bench.py --write                      # store the run, update docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import report
from broker_bench import machine
from brokers import cpu_seconds
from tests.support.hubproc import serve_process
from tests.support.postgres import postgres_server
from tests.support.rabbitmq import ADMIN_PASSWORD, ADMIN_USER, RabbitCluster, RabbitNode, rabbit_cluster

SECRET_KEY = "external-bench-secret-key-of-32-characters"
Reading = tuple[str, int, int]
"""(device id, telemetry definition id, value)."""


async def _create_database(base_url: str) -> str:
    """A new database on the server; returns its asyncpg DSN."""
    dsn = base_url.replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(dsn + "/postgres")
    try:
        await connection.execute('CREATE DATABASE "external_bench"')
    finally:
        await connection.close()
    return dsn + "/external_bench"


def _devices(http_url: str, token: str, organization_id: str, count: int) -> list[tuple[str, int]]:
    """``count`` devices with one telemetry definition each: (device id, definition id)."""
    made = []
    with httpx.Client(base_url=http_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        for index in range(count):
            created = http.post(f"/api/v1/organizations/{organization_id}/devices", json={"name": f"b{index}"})
            device_id = created.raise_for_status().json()["id"]
            definition = http.post(f"/api/v1/devices/{device_id}/telemetry-definitions", json={"key": "t"})
            made.append((device_id, int(definition.raise_for_status().json()["data"]["id"])))
    return made


def _ingest_consumed(cluster: RabbitCluster, vhost: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cluster.api("GET", f"/queues/{vhost}/mqtthub.ingest").get("consumers", 0) >= 1:
                return
        except OSError:  # the vhost or queue is not made yet
            pass
        time.sleep(0.2)
    raise RuntimeError(f"no hub consumes the ingest queue of vhost {vhost} after {timeout:.0f} s")


async def _publish(node: RabbitNode, vhost: str, readings: list[Reading], window: int = 200) -> None:
    """Publish readings as the MQTT plugin does, ``window`` confirms outstanding at a time."""
    url = f"amqp://{ADMIN_USER}:{ADMIN_PASSWORD}@127.0.0.1:{node.amqp_port}/{vhost}"
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange("amq.topic")
        for start in range(0, len(readings), window):
            await asyncio.gather(
                *(
                    exchange.publish(
                        aio_pika.Message(
                            f'{{"value": {value}, "telemetryDataId": {definition}}}'.encode(),
                            headers={"x-mqtt-publish-qos": 1, "x-mqtt-dup": False},
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        ),
                        routing_key=f"devices.{device}.datastream",
                    )
                    for device, definition, value in readings[start : start + window]
                )
            )


async def _count(dsn: str, device_ids: list[str]) -> tuple[int, int]:
    """(rows, distinct readings) stored for the devices."""
    connection = await asyncpg.connect(dsn)
    try:
        row = await connection.fetchrow(
            "SELECT count(*) AS n, count(DISTINCT (device_id, value)) AS d FROM telemetry_values"
            " WHERE device_id = ANY($1::text[])",
            device_ids,
        )
    finally:
        await connection.close()
    assert row is not None
    return int(row["n"]), int(row["d"])


def _readings(devices: list[tuple[str, int]], first_value: int, count: int) -> list[Reading]:
    values = range(first_value, first_value + count // len(devices))
    return [(device, definition, value) for value in values for device, definition in devices]


async def _publishing(cluster: RabbitCluster, vhost: str, readings: list[Reading], publishers: int) -> None:
    """The publishers, spread over the nodes, each with its share of ``readings``."""
    shares = [readings[index::publishers] for index in range(publishers)]
    nodes = cluster.nodes
    await asyncio.gather(*(_publish(nodes[index % len(nodes)], vhost, share) for index, share in enumerate(shares)))


async def measure(
    cluster: RabbitCluster, vhost: str, dsn: str, devices: list[tuple[str, int]], args: argparse.Namespace
) -> dict[str, Any]:
    """Publish ``args.readings`` readings and wait until they are stored; the rates and counts."""
    readings = _readings(devices, 0, args.readings)
    device_ids = [device for device, _ in devices]
    started = time.perf_counter()
    publishing = asyncio.ensure_future(_publishing(cluster, vhost, readings, args.publishers))
    published_at: float | None = None
    stored, last_change, last_rows = 0, started, 0
    while stored < len(readings) and time.perf_counter() - started < args.timeout:
        await asyncio.sleep(0.25)
        if published_at is None and publishing.done():
            publishing.result()
            published_at = time.perf_counter()
        stored, _ = await _count(dsn, device_ids)
        if stored != last_rows:
            last_change, last_rows = time.perf_counter(), stored
    await publishing
    published_at = published_at or time.perf_counter()
    await asyncio.sleep(1)  # a reading stored twice would show up now
    rows, distinct = await _count(dsn, device_ids)
    return {
        "readings": len(readings),
        "stored_rows": rows,
        "stored_distinct": distinct,
        "exactly_once": rows == distinct == len(readings),
        "confirmed_rate": len(readings) / (published_at - started),
        "stored_rate": distinct / (last_change - started),
    }


class Drain(threading.Thread):
    """Counts the stored rows every 0.1 s while a hub that was down works through the backlog left for it.

    Started before the hub, since it consumes as soon as it is up, before it says it serves HTTP.
    """

    def __init__(self, dsn: str, device_ids: list[str], expected: int, timeout: float) -> None:
        super().__init__(name="drain", daemon=True)
        self.dsn, self.device_ids, self.expected, self.timeout = dsn, device_ids, expected, timeout
        self.samples: list[tuple[float, int]] = []

    def run(self) -> None:
        asyncio.run(self._poll())

    async def _poll(self) -> None:
        deadline = time.perf_counter() + self.timeout
        while time.perf_counter() < deadline:
            rows, _ = await _count(self.dsn, self.device_ids)
            self.samples.append((time.perf_counter(), rows))
            if rows >= self.expected:
                return
            await asyncio.sleep(0.1)

    def rate(self) -> float | None:
        """Rows per second from the last count before the rows grew to the first count at the end; None if the
        hub was done before two counts could tell."""
        start = max((index for index, (_, rows) in enumerate(self.samples) if rows == self.samples[0][1]), default=0)
        end = next(index for index, (_, rows) in enumerate(self.samples) if rows == self.samples[-1][1])
        if end <= start:
            return None
        (t0, rows0), (t1, rows1) = self.samples[start], self.samples[end]
        return (rows1 - rows0) / (t1 - t0)


def _shared_note(load: float) -> str:
    """What the stored run says about the machine: the cluster, database, hub and publishers share its cores."""
    cores = os.cpu_count() or 1
    shared = f"The 2 RabbitMQ nodes, PostgreSQL, the hub and the publishers shared the machine's {cores} cores"
    if load > cores:
        return f"Provisional: {shared}, which other work was using too (1-minute load average up to {load:.1f})."
    return f"{shared}; nothing else ran."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readings", type=int, default=10_000, help="readings published in all (default 10000)")
    parser.add_argument("--publishers", type=int, default=4, help="AMQP publishers over both nodes (default 4)")
    parser.add_argument(
        "--backlog", type=int, default=10_000, help="readings left for a restarted hub to store (default 10000)"
    )
    parser.add_argument("--devices", type=int, default=50, help="devices the readings come from (default 50)")
    parser.add_argument("--timeout", type=float, default=60.0, help="most seconds to wait for the rows (default 60)")
    parser.add_argument("--write", action="store_true", help="store the run and update docs/benchmarks.md")
    args = parser.parse_args(argv)
    info, load_start = machine(), os.getloadavg()
    booted = time.perf_counter()
    with postgres_server() as base_url, rabbit_cluster() as cluster, tempfile.TemporaryDirectory() as workdir:
        dsn = asyncio.run(_create_database(base_url))
        node = cluster.nodes[0]
        settings = {
            "database_url": f"{base_url}/external_bench",
            "secret_key": SECRET_KEY,
            "log_level": "warning",
            "broker": "rabbitmq",
            "rabbitmq_amqp_url": node.amqp_url,
            "rabbitmq_management_url": node.management_url,
        }
        with serve_process(Path(workdir), **settings) as hub:
            assert hub.admin is not None
            vhost = hub.admin.short_id
            devices = _devices(hub.http_url, hub.admin.token, hub.admin.org_id, args.devices)
            _ingest_consumed(cluster, vhost)
            print(f"cluster, database and hub up in {time.perf_counter() - booted:.0f} s", flush=True)
            cpu_before = cpu_seconds(hub.process.pid)
            result = asyncio.run(measure(cluster, vhost, dsn, devices, args))
            result["hub_cpu_ms_per_reading"] = (cpu_seconds(hub.process.pid) - cpu_before) * 1000 / result["readings"]
        # The hub's own ceiling: a backlog published while it is down, stored as fast as it can once it is back.
        backlog = _readings(devices, args.readings, args.backlog)
        asyncio.run(_publishing(cluster, vhost, backlog, args.publishers))
        drain = Drain(dsn, [device for device, _ in devices], result["readings"] + len(backlog), args.timeout)
        drain.start()
        with serve_process(Path(workdir), **settings):
            drain.join()
        rows, distinct = asyncio.run(_count(dsn, [device for device, _ in devices]))
        result |= {
            "backlog": len(backlog),
            "drain_rate": drain.rate(),
            "stored_rows": rows,
            "stored_distinct": distinct,
        }
        result["exactly_once"] = rows == distinct == result["readings"] + len(backlog)
    load_end = os.getloadavg()
    print(
        f"{result['readings']} readings from {args.publishers} AMQP publishers: confirmed at"
        f" {result['confirmed_rate']:,.0f}/s, stored at {result['stored_rate']:,.0f}/s,"
        f" {result['stored_distinct']} stored ({result['stored_rows']} rows), exactly once: {result['exactly_once']};"
        f" hub CPU {result['hub_cpu_ms_per_reading']:.3f} ms per reading; a backlog of {result['backlog']}"
        f" stored at {result['drain_rate'] or 0:,.0f}/s by a restarted hub;"
        f" load average {load_start[0]:.2f} at the start, {load_end[0]:.2f} at the end"
    )
    if args.write:
        record = {
            "machine": info,
            "load": {"start": list(load_start), "end": list(load_end)},
            "publishers": args.publishers,
            "devices": args.devices,
            "note": _shared_note(max(load_start[0], load_end[0])),
            "result": result,
        }
        report.save("external", record)
        report.update()
    return 0 if result["exactly_once"] else 1


if __name__ == "__main__":
    sys.exit(main())
