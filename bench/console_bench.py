"""Console page times: every page of the web console against a hub holding 10,000 devices and 1M readings.

The hub runs as a user starts it (``mqtthub serve`` on SQLite, the default install). Before it starts, the
database is filled directly: ``--devices`` devices with a token and a status each (every other one online, with
battery and signal), one telemetry definition with thresholds on the devices that have history, and
``--readings`` stored readings: a fifth of them on one busy device (``d0``), the rest spread over ``--with-history``
devices, one every few seconds over the last seven days, and one integration product (a subscription with an
action and 10,000 entries in its failure log). The benchmark then signs in as the hub's administrator
(the session cookie the console's sign-in sets) and asks for every console page a browser reads, taken from the
hub's own route table (``mqtthub.auth.roles.ROUTES``), so a page added later is measured without changing this
file. A page whose path needs an identifier this benchmark does not create is listed as not measured.

Each page is asked ``--rounds`` times over one keep-alive connection on loopback, after a warm-up round; the time
is from sending the request to the last byte of the answer, so it is the hub's own time plus well under a
millisecond of transport. Reported per page: median, p95 and the slowest answer; the target is p95 ≤ 200 ms.

Usage::

    .venv/bin/python bench/console_bench.py                  # 10,000 devices, 1M readings, 20 rounds
    .venv/bin/python bench/console_bench.py --devices 2000 --readings 100000 --rounds 5
    .venv/bin/python bench/console_bench.py --write          # store the run, update docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import report
from broker_bench import machine
from brokers import _free_port
from hub_server import seed, started_hub

ADMIN_PASSWORD = "bench-admin-password"  # what hub_server.started_hub gives the hub
ADMIN_EMAIL = "admin@mqtthub.local"
START_MARK = "<!-- console:start -->"
END_MARK = "<!-- console:end -->"
DAY_MS = 86_400_000
BUSY_SHARE = 5
"""The busy device ``d0`` holds one reading in BUSY_SHARE."""
FAILURES = 10_000
"""Entries in the bench product's failure log (its page shows the newest)."""


def fill(database: Path, readings: int, with_history: int) -> dict[str, str]:
    """Write statuses, definitions and readings into the seeded database; return the ids the pages need."""
    now_ms = int(time.time() * 1000)
    connection = sqlite3.connect(database)
    try:
        organization = connection.execute("SELECT id FROM organizations WHERE short_id = 'bench001'").fetchone()[0]
        devices = [row[0] for row in connection.execute("SELECT id FROM devices ORDER BY name")]
        by_name = dict(connection.execute("SELECT name, id FROM devices"))
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        connection.executemany(
            "INSERT INTO device_status (device_id, online, status, battery, signal, last_seen, status_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (device, n % 2, "online" if n % 2 else "offline", 50 + n % 50, -60 - n % 30, stamp, stamp)
                for n, device in enumerate(devices)
            ],
        )
        busy = by_name["d0"]
        historic = [busy] + [by_name[f"d{n}"] for n in range(1, with_history)]
        definitions: dict[str, int] = {}
        for device in historic:
            cursor = connection.execute(
                "INSERT INTO telemetry_definitions (organization_id, device_id, key, name, unit, min_threshold,"
                " max_threshold, created_at) VALUES (?, ?, 'temperature', 'Temperature', 'C', 5, 35, ?)",
                (organization, device, stamp),
            )
            definitions[device] = int(cursor.lastrowid or 0)
        shares = {busy: readings // BUSY_SHARE}
        rest = (readings - shares[busy]) // max(1, len(historic) - 1)
        shares |= dict.fromkeys(historic[1:], rest)
        generator = random.Random(7)
        for device, count in shares.items():
            step = 7 * DAY_MS // max(1, count)
            connection.executemany(
                "INSERT INTO telemetry_values (device_id, definition_id, sensor, value, raw, urgent, source, ts_ms,"
                " received_ms) VALUES (?, ?, 'temperature', ?, ?, 0, 'mqtt', ?, ?)",
                (
                    (device, definitions[device], value, f"{value:.2f}", ts, ts)
                    for value, ts in (
                        (20 + 10 * generator.random(), now_ms - 7 * DAY_MS + i * step) for i in range(count)
                    )
                ),
            )
        product, subscription = _integration(connection, organization, stamp)
        connection.commit()
        return {
            "org_id": organization,
            "device_id": busy,
            "definition_id": str(definitions[busy]),
            "quiet_device_id": by_name[f"d{with_history}"],
            "product_id": product,
            "subscription_id": subscription,
        }
    finally:
        connection.close()


def _integration(connection: sqlite3.Connection, organization: str, stamp: str) -> tuple[str, str]:
    """A product connected to a broker that is not there, one subscription with an action, and a failure log."""
    from mqtthub.integrations.schemas import TopicsConfig

    product, config, subscription = (str(uuid.uuid4()) for _ in range(3))
    connection.execute(
        "INSERT INTO products (id, organization_id, name, description, created_at, updated_at)"
        " VALUES (?, ?, 'bench product', NULL, ?, ?)",
        (product, organization, stamp, stamp),
    )
    broker = {"host": "127.0.0.1", "port": 1, "username": "bench", "password": None}
    topics = TopicsConfig().model_dump(mode="json")
    connection.execute(
        "INSERT INTO mqtt_configs (id, product_id, broker, topics, messages_received, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, 0, ?, ?)",
        (config, product, json.dumps(broker), json.dumps(topics), stamp, stamp),
    )
    topic = "/v3/applications/ABC123/business-events"
    action = {"type": "republish", "topic": "alerts/{{event.policy_id}}", "condition": "event.amount > 100"}
    connection.execute(
        "INSERT INTO event_subscriptions (id, product_id, name, topic, variables, enabled, description, actions,"
        " messages_received, actions_executed, actions_failed, created_at, updated_at)"
        " VALUES (?, ?, 'policy_created', ?, ?, 1, NULL, ?, 0, 0, 0, ?, ?)",
        (subscription, product, topic, json.dumps({"application_id": "ABC123"}), json.dumps([action]), stamp, stamp),
    )
    connection.executemany(
        "INSERT INTO action_failures (id, product_id, subscription_id, action_index, action_type, error, topic,"
        " created_at) VALUES (?, ?, ?, 0, 'republish', 'bench failure', ?, ?)",
        ((str(uuid.uuid4()), product, subscription, topic, stamp) for _ in range(FAILURES)),
    )
    return product, subscription


def pages(ids: dict[str, str], devices: int) -> tuple[list[tuple[str, str]], list[str]]:
    """(label, URL) of every console page to ask for, and the page routes that cannot be (unknown identifiers)."""
    from mqtthub.auth.roles import ROUTES

    known = {name: ids[name] for name in ("org_id", "device_id", "definition_id", "product_id", "subscription_id")}
    variants = {
        "/ui/orgs/{org_id}/devices": ["", "?q=d9999", f"?page={max(1, devices // 50)}"],
        "/ui/orgs/{org_id}/devices/{device_id}": ["", f"@{ids['quiet_device_id']}"],
        "/ui/orgs/{org_id}/devices/{device_id}/charts": ["", "?range=1h", "?range=7d"],
    }
    chosen: list[tuple[str, str]] = []
    skipped: list[str] = []
    for method, route in sorted(ROUTES):
        if method != "GET" or not route.startswith("/ui/orgs/{org_id}"):
            continue
        try:
            path = route.format(**known)
        except KeyError:
            skipped.append(route)
            continue
        for variant in variants.get(route, [""]):
            if variant.startswith("@"):  # the same page for another device
                chosen.append((f"{route} (device without history)", route.format(**known | {"device_id": variant[1:]})))
            else:
                chosen.append((route + variant, path + variant))
    return chosen, skipped


def _login(port: int) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = json.dumps({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    connection.request("POST", "/api/v1/auth/login", body, {"Content-Type": "application/json"})
    answer = connection.getresponse()
    data = json.loads(answer.read())
    if answer.status != 200:
        raise RuntimeError(f"login failed: {answer.status} {data}")
    connection.close()
    return str(data["token"])


def measure(port: int, token: str, urls: list[tuple[str, str]], rounds: int) -> Iterator[dict[str, Any]]:
    """Ask each page ``rounds`` times (after one unmeasured round) and yield its timings in milliseconds."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Cookie": f"mqtthub_session={token}", "Accept": "text/html"}
    for label, url in urls:
        times: list[float] = []
        status, size = 0, 0
        for n in range(rounds + 1):
            start = time.perf_counter()
            connection.request("GET", url, headers=headers)
            answer = connection.getresponse()
            size = len(answer.read())
            status = answer.status
            if n:
                times.append((time.perf_counter() - start) * 1000)
        times.sort()
        yield {
            "page": label,
            "status": status,
            "bytes": size,
            "p50": statistics.median(times),
            "p95": times[min(len(times) - 1, round(0.95 * (len(times) - 1)))],
            "max": times[-1],
        }
    connection.close()


def table(record: dict[str, Any]) -> str:
    """The per-page table of a stored run, between this benchmark's markers in docs/benchmarks.md."""
    info, load = record["machine"], record["load"]
    lines = [
        START_MARK,
        "",
        f"Measured {info['Date']} on {info['CPU']}, Python {info['Python']}: {record['devices']:,} devices,"
        f" {record['readings']:,} readings, {record['rounds']} requests per page; 1-minute load average"
        f" {load['start'][0]:.1f} at the start, {load['end'][0]:.1f} at the end.",
        "",
        "| Page | Status | Size | p50 | p95 | max | Met (p95 ≤ 200 ms) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in record["rows"]:
        met = row["status"] == 200 and row["p95"] <= report.CONSOLE_P95_MS
        lines.append(
            f"| `{row['page']}` | {row['status']} | {row['bytes']:,} B | {row['p50']:.1f} ms | {row['p95']:.1f} ms"
            f" | {row['max']:.1f} ms | {'met' if met else '**not met**'} |"
        )
    lines += ["", *(f"Not measured (no identifier for it in this benchmark): `{r}`." for r in record["skipped"])]
    return "\n".join([*lines, "", END_MARK])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=10_000, help="devices (default 10,000)")
    parser.add_argument("--readings", type=int, default=1_000_000, help="stored readings (default 1,000,000)")
    parser.add_argument("--with-history", type=int, default=100, help="devices that have readings (default 100)")
    parser.add_argument("--rounds", type=int, default=20, help="measured requests per page (default 20)")
    parser.add_argument("--write", action="store_true", help="store the run and update docs/benchmarks.md")
    args = parser.parse_args(argv)
    if not 1 < args.with_history < args.devices:
        parser.error("--with-history must be between 2 and the number of devices")
    info, load_start = machine(), os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="mqtthub-bench-console-") as directory:
        workdir = Path(directory)
        started = time.monotonic()
        seed(workdir, args.devices, 0)
        ids = fill(workdir / "mqtthub.db", args.readings, args.with_history)
        print(f"seeded {args.devices:,} devices and {args.readings:,} readings in {time.monotonic() - started:.0f} s")
        urls, skipped = pages(ids, args.devices)
        port = _free_port()
        with started_hub(workdir, env={"MQTTHUB_HTTP_PORT": str(port)}):
            rows = list(measure(port, _login(port), urls, args.rounds))
    load_end = os.getloadavg()
    width = max(len(row["page"]) for row in rows)
    for row in rows:
        print(
            f"{row['page']:<{width}}  {row['status']}  {row['bytes']:>8,} B  p50 {row['p50']:7.1f} ms"
            f"  p95 {row['p95']:7.1f} ms  max {row['max']:7.1f} ms"
        )
    for route in skipped:
        print(f"not measured (needs an identifier this benchmark does not create): {route}")
    print(f"load average {load_start[0]:.2f} at the start, {load_end[0]:.2f} at the end")
    failed = [row["page"] for row in rows if row["status"] != 200]
    if args.write:
        record = {
            "machine": info,
            "load": {"start": list(load_start), "end": list(load_end)},
            "devices": args.devices,
            "readings": args.readings,
            "rounds": args.rounds,
            "rows": rows,
            "skipped": skipped,
        }
        report.save("console", record)
        report.replace_block(report.DOC, START_MARK, END_MARK, table(record))
        report.update()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
