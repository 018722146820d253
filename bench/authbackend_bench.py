"""Auth-backend latency: checks answered to external brokers at a fixed rate, against ``mqtthub serve``.

The hub runs as a user starts it (SQLite, seeded devices and API tokens, ``MQTTHUB_AUTH_BACKEND_SECRET`` set). This
process plays the brokers: it sends a mix of the checks they send (go-auth ACL checks of devices' publishes, EMQX
logins of devices and authorizations of apps' subscriptions, RabbitMQ topic checks, go-auth logins of app tokens)
over a few keep-alive connections to the auth backend's own port (``MQTTHUB_AUTH_BACKEND_PORT``, as the README
recommends; ``--api-port`` asks through the HTTP API's port instead), open loop: request ``i`` is due at
``start+i/rate`` and its latency is measured from that moment, so a slow answer delays and counts against the
requests queued behind it rather than hiding them. Requests are written as raw HTTP/1.1 from an event loop on
uvloop (when installed), so the load generator costs little of the machine it shares with the hub. Before the
measured run, every credential is checked once (the hub's
caches warm, as they are in a running deployment); the run then reports the percentiles, the achieved rate, any
answer that was not the expected one, and the hub's own latency histogram from ``/metrics``.

Usage::

    .venv/bin/python bench/authbackend_bench.py                   # 2,000 checks/s for 20 s
    .venv/bin/python bench/authbackend_bench.py --rate 4000 --seconds 10
    .venv/bin/python bench/authbackend_bench.py --api-port        # through the HTTP API's port and middleware
    .venv/bin/python bench/authbackend_bench.py --write           # store the run, update docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import report
from broker_bench import machine
from brokers import _free_port, cpu_seconds
from hub_server import seed, started_hub
from loadgen import run_loop

SECRET = "bench-auth-backend-secret"
SHORT_ID = "bench001"  # the organization hub_server.seed creates

Check = tuple[bytes, int]
"""A raw HTTP request and the status code expected."""


def _request(port: int, path: str, body: bytes, content_type: str) -> bytes:
    basic = base64.b64encode(f"broker:{SECRET}".encode()).decode()
    head = (
        f"POST /auth-backend/{path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Basic {basic}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def checks(port: int, devices: list[tuple[str, str]], apps: list[tuple[str, str]]) -> list[Check]:
    """One round of the mix: five checks per device, cycling through the app tokens."""
    mix: list[Check] = []
    for n, (device_id, token) in enumerate(devices):
        app = apps[n % len(apps)][0]
        topic = f"devices/{device_id}/datastream"
        mix += [
            (
                _request(
                    port,
                    "mosquitto/acl",
                    json.dumps(
                        {"username": device_id, "clientid": device_id, "topic": f"org/{SHORT_ID}/{topic}", "acc": 2}
                    ).encode(),
                    "application/json",
                ),
                200,
            ),
            (
                _request(
                    port,
                    "emqx/authn",
                    json.dumps({"username": device_id, "password": token, "clientid": device_id}).encode(),
                    "application/json",
                ),
                200,
            ),
            (
                _request(
                    port,
                    "emqx/authz",
                    json.dumps(
                        {"username": app, "clientid": "a", "action": "subscribe", "topic": "device/+/telemetry/#"}
                    ).encode(),
                    "application/json",
                ),
                200,
            ),
            (
                _request(
                    port,
                    "rabbitmq/topic",
                    urlencode(
                        {
                            "username": device_id,
                            "vhost": SHORT_ID,
                            "resource": "topic",
                            "name": "amq.topic",
                            "permission": "write",
                            "routing_key": topic.replace("/", "."),
                        }
                    ).encode(),
                    "application/x-www-form-urlencoded",
                ),
                200,
            ),
            (
                _request(
                    port,
                    "mosquitto/user",
                    urlencode({"username": app, "password": app}).encode(),
                    "application/x-www-form-urlencoded",
                ),
                200,
            ),
        ]
    return mix


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> tuple[int, bytes]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return status, await reader.readexactly(length)


async def run(port: int, mix: list[Check], rate: float, seconds: float, connections: int) -> dict[str, Any]:
    """Send ``rate * seconds`` checks open loop over ``connections`` connections; latencies in milliseconds."""
    total = int(rate * seconds)
    queue: asyncio.Queue[tuple[float, Check] | None] = asyncio.Queue()
    latencies: list[float] = []
    wrong: list[str] = []

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while (item := await queue.get()) is not None:
                due, (request, expected) = item
                status, body = await _exchange(reader, writer, request)
                latencies.append((time.perf_counter() - due) * 1000)
                if status != expected or body.strip() in (b'{"result":"deny"}', b"deny"):
                    wrong.append(f"{status} {body[:80]!r}")
        finally:
            writer.close()

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    start = time.perf_counter() + 0.05
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((due, mix[i % len(mix)]))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    elapsed = time.perf_counter() - start
    ordered = sorted(latencies)

    def percentile(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    return {
        "checks": len(latencies),
        "achieved_rate": len(latencies) / elapsed,
        "p50": percentile(50),
        "p99": percentile(99),
        "p999": percentile(99.9),
        "max": ordered[-1],
        "mean": statistics.fmean(ordered),
        "wrong": len(wrong),
        "wrong_examples": wrong[:3],
    }


def _wait_http(port: int) -> None:
    for _ in range(1200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the hub's auth backend did not come up")


def _server_histogram(api_port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    buckets: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("mqtthub_auth_backend_seconds_bucket"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[le] = float(line.rsplit(" ", 1)[1])
    return buckets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=2000.0, help="checks per second (default 2000)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the measured run (default 20)")
    parser.add_argument("--connections", type=int, default=8, help="keep-alive connections (default 8)")
    parser.add_argument("--devices", type=int, default=500, help="devices checked (default 500)")
    parser.add_argument(
        "--api-port", action="store_true", help="ask on the HTTP API's port instead of the auth backend's own"
    )
    parser.add_argument("--write", action="store_true", help="store the run and update docs/benchmarks.md")
    args = parser.parse_args(argv)
    info, load_start = machine(), os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="mqtthub-bench-authbackend-") as directory:
        workdir = Path(directory)
        devices, apps = seed(workdir, args.devices, 20)
        api_port = _free_port()
        port = api_port if args.api_port else _free_port()
        environment = {"MQTTHUB_HTTP_PORT": str(api_port), "MQTTHUB_AUTH_BACKEND_SECRET": SECRET}
        if not args.api_port:
            environment["MQTTHUB_AUTH_BACKEND_PORT"] = str(port)
        with started_hub(workdir, env=environment) as hub:
            _wait_http(port)
            mix = checks(port, [(str(d), str(t)) for d, t in devices], [(str(a), str(b)) for a, b in apps])
            warm = run_loop(run(port, mix, args.rate, len(mix) / args.rate, args.connections))
            cpu_before = cpu_seconds(hub.pid)
            measured = run_loop(run(port, mix, args.rate, args.seconds, args.connections))
            measured["hub_cpu_ms_per_check"] = (cpu_seconds(hub.pid) - cpu_before) * 1000 / measured["checks"]
            server = _server_histogram(api_port)
    load_end = os.getloadavg()
    print(f"warm-up: {warm['checks']} checks, {warm['wrong']} wrong")
    print(
        f"{measured['checks']} checks at {measured['achieved_rate']:,.0f}/s: p50 {measured['p50']:.2f} ms, "
        f"p99 {measured['p99']:.2f} ms, p99.9 {measured['p999']:.2f} ms, max {measured['max']:.2f} ms; "
        f"{measured['wrong']} wrong answers; the hub spent {measured['hub_cpu_ms_per_check']:.3f} ms of CPU per check"
    )
    print(f"hub's own histogram (cumulative, warm-up included): {server}")
    print(f"load average {load_start[0]:.2f} at the start, {load_end[0]:.2f} at the end")
    if args.write:
        run_record = {
            "machine": info,
            "load": {"start": list(load_start), "end": list(load_end)},
            "rate": args.rate,
            "seconds": args.seconds,
            "connections": args.connections,
            "devices": args.devices,
            "port": "api" if args.api_port else "own",
            "result": measured,
            "server_buckets": server,
        }
        report.save("authbackend", run_record)
        report.update()
    return 0 if measured["wrong"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
