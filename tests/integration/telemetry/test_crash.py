"""Durability: after ``kill -9`` of the hub, every PUBACKed QoS 1 message is in the database."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from tests.integration.telemetry.hubflows import admin_client, short_id_of, started_hub
from tests.integration.telemetry.support import SeededDevice

ACKED_BEFORE_KILL = 400
TOTAL = 20_000


class Streamer:
    """Publishes ``TOTAL`` QoS 1 datastream messages (value = sequence number) as fast as paho allows."""

    def __init__(self, port: int, device: SeededDevice) -> None:
        self.device = device
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="crash-device", protocol=paho.MQTTv5)
        self.client.username_pw_set(device.device_id, device.token)
        self.client.max_inflight_messages_set(100)
        self.client.max_queued_messages_set(0)
        self.client.on_publish = self._on_publish
        self.mids: dict[int, int] = {}
        self.early: dict[int, int] = {}
        self.acked: set[int] = set()
        self.refused: set[int] = set()
        self.lock = threading.Lock()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    # paho calls on_publish holding its own lock, so ours is never held around a paho call (lock order).
    def _on_publish(self, client: object, userdata: object, mid: int, reason_code: object, properties: object) -> None:
        code = int(getattr(reason_code, "value", 0))
        with self.lock:
            seq = self.mids.get(mid)
            if seq is None:
                self.early[mid] = code
            else:
                self._record(seq, code)

    def _record(self, seq: int, code: int) -> None:
        (self.acked if code == 0 else self.refused).add(seq)

    def run(self, stop: threading.Event) -> None:
        topic = f"devices/{self.device.device_id}/datastream"
        for seq in range(TOTAL):
            if stop.is_set():
                return
            payload = f'{{"value": {seq}, "telemetryDataId": {self.device.definition_id}}}'
            info = self.client.publish(topic, payload, qos=1)
            with self.lock:
                self.mids[info.mid] = seq
                code = self.early.pop(info.mid, None)
                if code is not None:
                    self._record(seq, code)

    def close(self) -> None:
        self.client.loop_stop()
        with contextlib.suppress(Exception):
            self.client.disconnect()


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
            device = await admin.device(admin.organization_id, await short_id_of(admin, admin.organization_id))
        streamer = await asyncio.to_thread(Streamer, hub.port("MQTT"), device)
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
