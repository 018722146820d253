"""Durability: after ``kill -9`` of the hub, every PUBACKed QoS 1 message is in the database."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from tests.integration.telemetry.hubflows import admin_client, started_hub
from tests.integration.telemetry.publisher import Publisher

ACKED_BEFORE_KILL = 400
TOTAL = 20_000


async def _stored_values(device_id: str, workdir: Path, database_url: str) -> set[int]:
    with started_hub(workdir, database_url) as hub:
        async with admin_client(hub) as admin:
            values: set[int] = set()
            offset = 0
            while True:
                page = await admin.call(
                    "GET", f"/api/v1/devices/{device_id}/datastreams", params={"limit": 1000, "offset": offset}
                )
                values.update(int(row["value"]) for row in page["data"])
                if not page["pagination"]["hasMore"]:
                    return values
                offset += 1000


async def test_acknowledged_messages_survive_kill_9(database_url: str, tmp_path: Path) -> None:
    with started_hub(tmp_path, database_url) as hub:
        async with admin_client(hub) as admin:
            device = await admin.device(admin.organization_id, admin.short_id)
        streamer = await asyncio.to_thread(Publisher, hub.port("MQTT"), device, v5=True, client_id="crash-device")
        streamer.limit = TOTAL
        stop = threading.Event()
        publisher = threading.Thread(target=streamer.run, args=(stop,), daemon=True)
        publisher.start()
        deadline = time.monotonic() + 60
        while len(streamer.acked) < ACKED_BEFORE_KILL:
            assert time.monotonic() < deadline, "the hub acknowledged too few messages"
            await asyncio.sleep(0.005)
        hub.process.kill()  # SIGKILL, mid-stream
        hub.process.wait()
        stop.set()
        publisher.join(30)
        streamer.close()
        with streamer.lock:
            acked = set(streamer.acked)
            published = len(streamer.mids)
    assert not streamer.refused
    assert len(acked) < published, "the kill should land mid-stream"
    stored = await _stored_values(device.device_id, tmp_path, database_url)
    missing = acked - stored
    assert not missing, f"{len(missing)} acknowledged messages lost, e.g. {sorted(missing)[:10]}"
