"""Shared helpers of the telemetry integration tests: seeded organizations and a paho device client."""

from __future__ import annotations

import json
import queue
import threading
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from mqtthub.crypto import SecretBox
from mqtthub.db import Database
from mqtthub.models import Device, DeviceToken, Organization, TelemetryDefinition

WAIT = 30.0


@dataclass
class SeededDevice:
    """An organization with one device, its token and a ``temperature`` definition (20..30 C)."""

    organization_id: str
    short_id: str
    device_id: str
    token: str
    definition_id: int


async def seed_device(database: Database, secrets: SecretBox, short_id: str, *, token: str) -> SeededDevice:
    """Create an organization, a device with ``token`` and a temperature definition."""
    async with database.session() as session:
        organization = Organization(name=f"org {short_id}", short_id=short_id)
        session.add(organization)
        await session.flush()
        device = Device(organization_id=organization.id, name="sensor")
        session.add(device)
        await session.flush()
        session.add(DeviceToken(device_id=device.id, token_hash=secrets.hash_token(token), hint=token[:12]))
        definition = TelemetryDefinition(
            organization_id=organization.id,
            device_id=device.id,
            key="temperature",
            unit="C",
            min_threshold=20.0,
            max_threshold=30.0,
        )
        session.add(definition)
        await session.flush()
        return SeededDevice(organization.id, short_id, device.id, token, definition.id)


class PahoDevice:
    """A device on paho-mqtt 2.x (its own network thread): publish and wait for the PUBACK reason code."""

    def __init__(
        self,
        port: int,
        device: SeededDevice,
        *,
        v5: bool = True,
        client_id: str | None = None,
        clean: bool = True,
        session_expiry: int = 0,
    ) -> None:
        protocol = paho.MQTTv5 if v5 else paho.MQTTv311
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"dev-{device.device_id[:8]}",
            protocol=protocol,
            clean_session=None if v5 else clean,
        )
        self.client.username_pw_set(device.device_id, device.token)
        self._acks: dict[int, queue.Queue[int]] = {}
        self._lock = threading.Lock()
        self.messages: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.client.on_publish = self._on_publish
        self.client.on_connect = lambda *args: self.connected.set()
        self.client.on_message = lambda client, userdata, msg: self.messages.put((msg.topic, json.loads(msg.payload)))
        self._port = port
        self._v5 = v5
        self._clean = clean
        self._session_expiry = session_expiry

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason_code: ReasonCode, properties: Any) -> None:
        with self._lock:
            box = self._acks.setdefault(mid, queue.Queue())
        box.put(int(reason_code.value))

    def connect(self) -> PahoDevice:
        """Connect and start the network thread; waits for CONNACK."""
        if self._v5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = self._session_expiry
            self.client.connect("127.0.0.1", self._port, clean_start=self._clean, properties=properties)
        else:
            self.client.connect("127.0.0.1", self._port)
        self.client.loop_start()
        assert self.connected.wait(WAIT), "no CONNACK"
        return self

    def publish(self, topic: str, payload: Any, *, qos: int = 1) -> int:
        """Publish JSON (or raw bytes) and return the PUBACK reason code (0 for QoS 0 once sent)."""
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        info = self.client.publish(topic, data, qos=qos)
        if qos == 0:
            info.wait_for_publish(WAIT)
            return 0
        with self._lock:
            box = self._acks.setdefault(info.mid, queue.Queue())
        return box.get(timeout=WAIT)

    def subscribe(self, topic: str, qos: int = 1) -> None:
        """Subscribe and wait for the SUBACK."""
        self.subscribed.clear()
        self.client.subscribe(topic, qos=qos)
        assert self.subscribed.wait(WAIT), "no SUBACK"

    def close(self) -> None:
        """Disconnect cleanly and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()
