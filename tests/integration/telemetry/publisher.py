"""A paho device publishing numbered QoS 1 readings flat out, recording which ones the hub acknowledged."""

from __future__ import annotations

import contextlib
import threading
import time

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.integration.telemetry.support import SeededDevice


class Publisher:
    """Publishes numbered QoS 1 readings flat out on its own device; records what the hub acknowledged."""

    def __init__(
        self, port: int, device: SeededDevice, *, v5: bool, client_id: str | None = None, username: str | None = None
    ) -> None:
        self.device = device
        self.name = "v5" if v5 else "v311"
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"publisher-{self.name}",
            protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
            clean_session=None if v5 else False,
        )
        # The device id, or as an external broker wants it (RabbitMQ: ``<vhost>:<device id>``).
        self.client.username_pw_set(username or device.device_id, device.token)
        # paho re-sends every message it holds after a reconnect, in flight or not: holding no more than the
        # hub's receive maximum (100) keeps a 5.0 client within it [MQTT-3.3.4-9].
        self.client.max_inflight_messages_set(100)
        self.client.max_queued_messages_set(100)
        self.client.reconnect_delay_set(1, 2)
        self.client.on_publish = self._on_publish
        self.client.on_disconnect = self._on_disconnect
        self.mids: dict[int, int] = {}
        self.early: dict[int, int] = {}
        self.acked: set[int] = set()
        self.refused: set[int] = set()
        self.disconnects = 0
        self.limit: int | None = None
        """Readings to publish in all; None: until stopped."""
        self.lock = threading.Lock()
        if v5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = 300
            self.client.connect("127.0.0.1", port, clean_start=False, properties=properties)
        else:
            self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    # paho calls back holding its own lock, so ours is never held around a paho call (lock order).
    def _on_publish(self, client: object, userdata: object, mid: int, reason_code: object, properties: object) -> None:
        code = int(getattr(reason_code, "value", 0))
        with self.lock:
            seq = self.mids.get(mid)
            if seq is None:
                self.early[mid] = code
            else:
                (self.acked if code == 0 else self.refused).add(seq)

    def _on_disconnect(self, *args: object) -> None:
        with self.lock:
            self.disconnects += 1

    def acked_count(self) -> int:
        with self.lock:
            return len(self.acked)

    def publish_at_most(self, more: int) -> None:
        """Stop after ``more`` further readings (a small disk must not fill up again at once)."""
        with self.lock:
            self.limit = len(self.mids) + more

    def run(self, stop: threading.Event) -> None:
        topic = f"devices/{self.device.device_id}/datastream"
        seq = 0
        while not stop.is_set():
            if self.limit is not None and seq >= self.limit:
                time.sleep(0.01)
                continue
            payload = f'{{"value": {seq}, "telemetryDataId": {self.device.definition_id}}}'
            info = self.client.publish(topic, payload, qos=1)
            if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
                time.sleep(0.005)  # paho's own queue is full: the hub is holding us back
                continue
            with self.lock:
                self.mids[info.mid] = seq
                code = self.early.pop(info.mid, None)
                if code is not None:
                    (self.acked if code == 0 else self.refused).add(seq)
            seq += 1

    def close(self) -> None:
        # Disconnect first: paho's network thread, asked to stop while still connected, waits for every message
        # it holds to be acknowledged, which a stalled connection never does.
        with contextlib.suppress(Exception):
            self.client.disconnect()
        self.client.loop_stop()
