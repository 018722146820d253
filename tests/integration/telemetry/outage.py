"""Database outages under load, against a hub process: QoS 1 publishers flat out, /health watched, nothing lost.

One scenario, run by the PostgreSQL and SQLite fault tests with their own way of breaking and
repairing the database: publishers (paho, MQTT 3.1.1 and 5.0, persistent sessions) send numbered
readings as fast as paho allows; the database fails; the test checks that no PUBACK arrives while
it is down, that ``/health`` reports it (and HTTP device messages get 503), that the same hub
process resumes once the database is back, and at the end that every acknowledged reading is in
the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import select

from mqtthub.db import Database
from mqtthub.models import TelemetryValue
from tests.integration.telemetry.hubflows import admin_client
from tests.integration.telemetry.publisher import Publisher
from tests.support.hubproc import HubProcess

ACKED_BEFORE_FAULT = 300
ACKED_AFTER_REPAIR = 300
FAULT_NOTICED_WITHIN = 30.0
PAUSE_OBSERVED = 2.0
"""Seconds of outage during which no PUBACK may arrive."""


@dataclass
class HealthWatch:
    """Polls ``/health`` in the background and keeps every ingest report that was not ``up``."""

    http: httpx.AsyncClient
    down: list[dict[str, Any]] = field(default_factory=list)
    last_status: int = 0

    async def run(self) -> None:
        while True:
            response = await self.http.get("/health")
            self.last_status = response.status_code
            ingest = response.json()["components"].get("ingest", {})
            if ingest.get("status") == "down":
                assert response.status_code == 503
                assert response.json()["status"] == "degraded"
                self.down.append(ingest)
            await asyncio.sleep(0.2)


async def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def stored_values(database_url: str, device_id: str) -> set[int]:
    async with Database(database_url) as database, database.session() as session:
        rows = await session.scalars(select(TelemetryValue.value).where(TelemetryValue.device_id == device_id))
        return {int(value) for value in rows if value is not None}


@dataclass
class OutageReport:
    """What the scenario saw, for the test to assert on."""

    reasons: set[str]
    disconnects: dict[str, int]
    acked: dict[str, int]


@dataclass
class Fault:
    """How a test breaks its database, and repairs it after at least ``seconds``."""

    break_database: Callable[[], Awaitable[None]]
    repair_database: Callable[[], Awaitable[None]]
    seconds: float


async def ride_out_an_outage(hub: HubProcess, database_url: str, fault: Fault) -> OutageReport:
    """Run the scenario of the module docstring; fails on a lost message, a PUBACK while down, or no recovery."""
    try:
        return await _ride_out(hub, database_url, fault)
    except Exception as exc:
        tail = "\n".join(hub.stderr[-40:])
        raise AssertionError(f"{exc!r}\nhub exit code {hub.process.poll()}, its last log lines:\n{tail}") from exc


async def _ride_out(hub: HubProcess, database_url: str, fault: Fault) -> OutageReport:
    async with admin_client(hub) as admin:
        short_id = admin.short_id
        devices = [await admin.device(admin.organization_id, short_id) for _ in range(2)]
        publishers = [
            await asyncio.to_thread(Publisher, hub.port("MQTT"), device, v5=v5)
            for device, v5 in zip(devices, (False, True), strict=True)
        ]
        stop = threading.Event()
        threads = [threading.Thread(target=p.run, args=(stop,), daemon=True) for p in publishers]
        for thread in threads:
            thread.start()
        watch = HealthWatch(admin.http)
        watcher = asyncio.create_task(watch.run())
        try:
            await _wait(
                lambda: all(p.acked_count() >= ACKED_BEFORE_FAULT for p in publishers), 60, "too few acks before"
            )
            await fault.break_database()
            broken_at = time.monotonic()
            await _wait(lambda: bool(watch.down), FAULT_NOTICED_WITHIN, "/health never reported the fault")
            # HTTP device messages are refused while the database is down, never answered 2xx.
            response = await admin.http.post(
                f"/api/v1/devices/{devices[0].device_id}/datastream",
                json={"value": -1, "telemetryDataId": devices[0].definition_id},
                headers={"Authorization": f"Bearer {devices[0].token}"},
            )
            assert response.status_code == 503, response.text
            assert int(response.headers["Retry-After"]) >= 1
            assert response.json()["code"] == "unavailable"
            await asyncio.sleep(1.0)  # acknowledgements of batches committed before the fault have landed
            paused = [p.acked_count() for p in publishers]
            await asyncio.sleep(max(PAUSE_OBSERVED, fault.seconds - (time.monotonic() - broken_at)))
            assert [p.acked_count() for p in publishers] == paused, "PUBACKs arrived while the database was down"
            assert watch.down, "the fault was not reported"
            for publisher in publishers:
                publisher.publish_at_most(3 * ACKED_AFTER_REPAIR)
            await fault.repair_database()
            await _wait(
                lambda: all(
                    p.acked_count() >= count + ACKED_AFTER_REPAIR for p, count in zip(publishers, paused, strict=True)
                ),
                60,
                f"publishing did not resume after the repair: acked {[p.acked_count() for p in publishers]}, "
                f"paused at {paused}, disconnects {[p.disconnects for p in publishers]}",
            )
            await _wait(lambda: watch.last_status == 200, 30, "/health did not recover")
            assert hub.process.poll() is None, "the hub must recover without a restart"
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        await asyncio.sleep(1.0)  # let the last acknowledgements in flight arrive
        for publisher in publishers:
            await asyncio.to_thread(publisher.close)
    lost: dict[str, list[int]] = {}
    for publisher in publishers:
        with publisher.lock:
            acked = set(publisher.acked)
        assert not publisher.refused, f"{publisher.name}: refused {sorted(publisher.refused)[:10]}"
        stored = await stored_values(database_url, publisher.device.device_id)
        missing = sorted(acked - stored)
        if missing:
            lost[publisher.name] = [*missing[:10], len(missing)]
    assert not lost, f"acknowledged messages lost (first ten, then the count): {lost}"
    return OutageReport(
        reasons={str(report.get("reason")) for report in watch.down},
        disconnects={p.name: p.disconnects for p in publishers},
        acked={p.name: p.acked_count() for p in publishers},
    )
