"""Fixtures of the integration tests: a test PKI, a real Mosquitto, helpers to publish and to wait."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from mqtthub.db import Database
from mqtthub.db.migrate import upgrade
from tests.conftest import require
from tests.integration.integrations.mosquitto import PASSWORD, USERNAME, Certificates, Mosquitto, mosquitto_available


@pytest.fixture(scope="session")
def pki() -> Certificates:
    """One CA with server and client certificates for the whole session."""
    return Certificates.generate()


@contextlib.contextmanager
def running_mosquitto(workdir: Path, pki: Certificates) -> Iterator[Mosquitto]:
    """A Mosquitto in ``workdir`` (made here), stopped (by PID) afterwards."""
    require(mosquitto_available(), "Mosquitto (apt-get install mosquitto mosquitto-clients)")
    broker = Mosquitto(workdir, pki)
    broker.workdir.mkdir()
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def mosquitto(tmp_path: Path, pki: Certificates) -> Iterator[Mosquitto]:
    """A Mosquitto of this test."""
    with running_mosquitto(tmp_path / "mosquitto", pki) as broker:
        yield broker


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated SQLite database of this test."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
    await upgrade(url)
    async with Database(url) as opened:
        yield opened


def publish(broker: Mosquitto, topic: str, payloads: list[bytes], *, qos: int = 1) -> None:
    """Publish ``payloads`` in order through the password listener and wait until each is acknowledged."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"publisher-{time.monotonic_ns()}")
    client.username_pw_set(USERNAME, PASSWORD)
    client.connect("127.0.0.1", broker.tcp_port)
    client.loop_start()
    try:
        for payload in payloads:
            client.publish(topic, payload, qos=qos).wait_for_publish(timeout=10)
    finally:
        client.disconnect()
        client.loop_stop()


async def wait_until(condition: Callable[[], object], *, timeout: float = 30.0, what: str = "condition") -> None:
    """Poll ``condition`` until it is truthy (generous limit: these tests assert outcomes, not timings)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
