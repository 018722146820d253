"""A storm of wrong administrator passwords over MQTT must neither stall the hub nor allow unlimited guessing.

argon2 costs tens of milliseconds per check by design. The hub checks passwords on a bounded pool of
threads, refuses checks beyond its bounds as busy, and counts MQTT logins against the same per-account
limits as HTTP login, so the account ends up locked out on both doors while ``/health`` keeps answering.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import httpx
import pytest

from mqtthub.mqtt.codec import encode
from mqtthub.mqtt.packets import PROTOCOL_V311, Connect
from mqtthub.mqtt.reason_codes import ConnackReturnCode
from tests.support.hubproc import serve_process

# Measures the hub's latency: run alone, after the parallel suite (a neighbour test would be measured too).
pytestmark = pytest.mark.alone

ADMIN = "admin@storm.test"
PASSWORD = "the right password"
ATTACKERS = 200
PROBE_INTERVAL = 0.05


async def _connect(port: int, client_id: str, password: str) -> int:
    """Send a 3.1.1 CONNECT as the administrator and return the CONNACK return code."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        packet = Connect(client_id, PROTOCOL_V311, username=ADMIN, password=password.encode())
        writer.write(encode(packet, PROTOCOL_V311))
        connack = await asyncio.wait_for(reader.readexactly(4), 30)
        assert connack[0] == 0x20
        return connack[3]
    finally:
        writer.close()


def _probe(base_url: str, done: threading.Event) -> list[float]:
    """Time ``GET /health`` every 50 ms until ``done``, from a thread of its own (the attack owns the loop)."""
    latencies = []
    with httpx.Client(base_url=base_url, timeout=10) as http:
        http.get("/health")  # the connection is opened before the timing starts
        while not done.is_set():
            started = time.monotonic()
            response = http.get("/health")
            latencies.append(time.monotonic() - started)
            assert response.status_code == 200
            done.wait(PROBE_INTERVAL)
    return latencies


async def test_wrong_password_storm_keeps_health_fast_and_locks_the_account(tmp_path: Path) -> None:
    with serve_process(
        tmp_path,
        wait_for=("MQTT",),
        admin_email=ADMIN,
        admin_password=PASSWORD,
        mqtt_auth_max_delay=1,
        log_level="warning",
    ) as hub:
        port = hub.port("MQTT")
        done = threading.Event()
        probe = asyncio.create_task(asyncio.to_thread(_probe, hub.http_url, done))
        await asyncio.sleep(0.3)
        codes = await asyncio.gather(*(_connect(port, f"storm-{n}", f"wrong {n}") for n in range(ATTACKERS)))
        done.set()
        latencies = await probe
        assert set(codes) <= {ConnackReturnCode.NOT_AUTHORIZED, ConnackReturnCode.SERVER_UNAVAILABLE}
        assert ConnackReturnCode.NOT_AUTHORIZED in codes
        assert len(latencies) >= 5
        assert max(latencies) < 0.2, f"/health took up to {max(latencies) * 1000:.0f} ms during the storm"
        # Locked out on both doors, even with the right password.
        assert await _connect(port, "right", PASSWORD) == ConnackReturnCode.NOT_AUTHORIZED
        async with httpx.AsyncClient(base_url=hub.http_url, timeout=10) as http:
            login = await http.post("/api/v1/auth/login", json={"email": ADMIN, "password": PASSWORD})
        assert login.status_code == 429
        assert int(login.headers["Retry-After"]) >= 1
        assert "Traceback" not in "\n".join(hub.stderr)
