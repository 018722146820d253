"""Broker state through a restart of a real ``mqtthub serve`` process (SIGTERM and ``kill -9``).

Checked from outside with paho (3.1.1 and 5.0) and mosquitto_sub, as a device fleet would see it.
"""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.conftest import require
from tests.support.hubproc import HubProcess, serve_process

WAIT = 20.0


class Client:
    """A paho client in its own network thread that records what it receives."""

    def __init__(self, client_id: str, *, v5: bool = False, persistent: bool = True) -> None:
        protocol = MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311
        self.v5 = v5
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=protocol,
            clean_session=None if v5 else not persistent,
        )
        self.session_present: bool | None = None
        self.messages: list[mqtt.MQTTMessage] = []
        self._connected = threading.Event()
        self._received = threading.Condition()
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message

    def _on_connect(self, _c: mqtt.Client, _u: object, flags: mqtt.ConnectFlags, _r: object, _p: object) -> None:
        self.session_present = flags.session_present
        self._connected.set()

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        with self._received:
            self.messages.append(message)
            self._received.notify_all()

    @contextmanager
    def connected(self, port: int) -> Iterator[Client]:
        props = None
        if self.v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", port, clean_start=False if self.v5 else 3, properties=props)
        self.client.loop_start()
        try:
            assert self._connected.wait(WAIT)
            yield self
        finally:
            self.client.disconnect()
            self.client.loop_stop()
            self._connected.clear()

    def wait_for(self, count: int) -> list[mqtt.MQTTMessage]:
        with self._received:
            assert self._received.wait_for(lambda: len(self.messages) >= count, WAIT), self.messages
            return list(self.messages)


def publish(port: int, *messages: tuple[str, bytes, int, bool]) -> None:
    """Publish and wait for each acknowledgement (PUBACK/PUBCOMP): then the hub has taken them."""
    publisher = Client("publisher", persistent=False)
    with publisher.connected(port):
        for topic, payload, qos, retain in messages:
            publisher.client.publish(topic, payload, qos=qos, retain=retain).wait_for_publish(WAIT)


def mosquitto_sub(port: int, *args: str) -> list[str]:
    result = subprocess.run(
        ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-v", "-W", str(int(WAIT)), *args],
        capture_output=True,
        text=True,
        timeout=WAIT + 10,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


@contextmanager
def hub(workdir: Path, mode: str) -> Iterator[HubProcess]:
    with serve_process(
        workdir,
        wait_for=("MQTT",),
        allow_anonymous=True,
        log_level="info",
        broker_persistence=mode,
        broker_persistence_interval_ms=100,
    ) as process:
        yield process


@pytest.mark.parametrize(
    ("mode", "stop"),
    [("sync", signal.SIGTERM), ("sync", signal.SIGKILL), ("periodic", signal.SIGTERM), ("periodic", signal.SIGKILL)],
    ids=["sync-sigterm", "sync-kill9", "periodic-sigterm", "periodic-kill9"],
)
def test_retained_messages_and_persistent_sessions_survive_a_restart(tmp_path: Path, mode: str, stop: int) -> None:
    require(shutil.which("mosquitto_sub") is not None, "mosquitto-clients")
    v311 = Client("fleet-311")
    v5 = Client("fleet-5", v5=True)
    with hub(tmp_path, mode) as first:
        port = first.port("MQTT")
        with v311.connected(port):
            v311.client.subscribe("jobs/#", qos=2)
        with v5.connected(port):
            props = Properties(PacketTypes.SUBSCRIBE)  # type: ignore[no-untyped-call]
            props.SubscriptionIdentifier = 5
            v5.client.subscribe("jobs/#", qos=1, properties=props)
        mosquitto_sub(port, "-c", "-i", "fleet-mosq", "-q", "1", "-t", "jobs/#", "-E")
        publish(
            port,
            ("config/site", b"v1", 1, True),
            ("jobs/1", b"first", 1, False),
            ("jobs/2", b"second", 2, False),
        )
        if stop == signal.SIGKILL:
            if mode == "periodic":
                time.sleep(0.5)  # a few intervals (100 ms here): periodic keeps what is older than one
            first.kill()
        else:
            first.stop(stop)
            assert first.process.returncode == 0
    with hub(tmp_path, mode) as second:
        port = second.port("MQTT")
        assert mosquitto_sub(port, "-t", "config/#", "-C", "1") == ["config/site v1"]
        assert mosquitto_sub(port, "-c", "-i", "fleet-mosq", "-q", "1", "-t", "jobs/#", "-C", "2") == [
            "jobs/1 first",
            "jobs/2 second",
        ]
        with v311.connected(port):
            received = v311.wait_for(2)
        assert v311.session_present
        assert [(m.topic, m.payload, m.qos) for m in received] == [("jobs/1", b"first", 1), ("jobs/2", b"second", 2)]
        with v5.connected(port):
            received = v5.wait_for(2)
        assert v5.session_present
        assert [(m.topic, m.payload) for m in received] == [("jobs/1", b"first"), ("jobs/2", b"second")]
        assert all(vars(m.properties)["SubscriptionIdentifier"] == [5] for m in received)
        second.stop(signal.SIGTERM)
    assert "broker state restored: 1 retained messages, 3 sessions" in "\n".join(second.stdout + second.stderr)


def test_a_damaged_state_file_is_moved_aside_and_the_hub_starts(tmp_path: Path) -> None:
    with hub(tmp_path, "sync") as first:
        publish(first.port("MQTT"), ("config/site", b"v1", 1, True))
        first.stop(signal.SIGTERM)
    state = tmp_path / "broker-state.db"
    state.write_bytes(b"\x00garbage" * 1000)
    with hub(tmp_path, "sync") as second:
        output = "\n".join(second.stdout + second.stderr)
        assert "broker state file" in output
        assert "unusable" in output
        assert list(tmp_path.glob("broker-state.db.bad-*"))
        publish(second.port("MQTT"), ("config/site", b"v2", 1, True))
        assert mosquitto_sub(second.port("MQTT"), "-t", "config/#", "-C", "1") == ["config/site v2"]
        second.stop(signal.SIGTERM)


def test_health_reports_a_state_file_that_cannot_be_written(tmp_path: Path) -> None:
    with hub(tmp_path, "sync") as running:
        port = running.port("MQTT")
        keeper = Client("keeper")
        with keeper.connected(port):
            keeper.client.subscribe("q/#", qos=1)
        other = sqlite3.connect(tmp_path / "broker-state.db", isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")  # another process holds the file: every write times out
        publisher = Client("publisher", persistent=False)
        with publisher.connected(port):
            info = publisher.client.publish("q/1", b"held", qos=1)
            deadline = time.monotonic() + 3 * WAIT
            while (health := httpx.get(running.http_url + "/health", timeout=10)).status_code == 200:
                assert time.monotonic() < deadline, health.text
                time.sleep(0.2)
            state = health.json()["components"]["brokerState"]
            assert (health.status_code, state["status"], state["mode"]) == (503, "down", "sync")
            assert not info.is_published()  # not acknowledged while it cannot be stored
            other.execute("ROLLBACK")
            other.close()
            info.wait_for_publish(3 * WAIT)
        assert running.process.poll() is None, "\n".join(running.stderr)
        assert httpx.get(running.http_url + "/health", timeout=10).json()["components"]["brokerState"]["status"] == "up"
        running.stop(signal.SIGTERM)
