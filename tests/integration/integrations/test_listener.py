"""The SDK's BrokerListener and ``mqtthub listen`` against a real Mosquitto."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from mqtthub.client.listener import BrokerListener, ListenerMessage, ListenerState
from mqtthub.client.tls import TLSOptions
from mqtthub.db import Database
from mqtthub.db.migrate import upgrade
from tests.integration.integrations.conftest import publish
from tests.integration.integrations.mosquitto import P12_PASSWORD, PASSWORD, USERNAME, Certificates, Mosquitto
from tests.integration.integrations.seeding import SECRET_KEY, seed

TOPIC = "app/user/42/sub"


def _wait(condition: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_background_listener_with_a_pkcs12_certificate(mosquitto: Mosquitto, pki: Certificates) -> None:
    received: list[ListenerMessage] = []
    tls = TLSOptions(ca_pem=pki.ca_pem, pkcs12=pki.client_p12, pkcs12_password=P12_PASSWORD)
    listener = BrokerListener(f"mqtts://127.0.0.1:{mosquitto.mtls_port}", [TOPIC], tls=tls, on_message=received.append)
    listener.start_background()
    try:
        assert listener.wait_connected(30)
        publish(mosquitto, TOPIC, [b'{"cmdType": "user:device:list"}', b"plain text"])
        _wait(lambda: len(received) == 2)
    finally:
        listener.stop()
    assert listener.state is ListenerState.STOPPED
    assert not listener.connected
    assert received[0].json() == {"cmdType": "user:device:list"}
    assert received[1].text == "plain text"
    assert received[0].received_at.tzinfo is not None


def test_blocking_start_returns_after_stop_and_survives_a_failing_callback(mosquitto: Mosquitto) -> None:
    calls: list[str] = []

    def explode(message: ListenerMessage) -> None:
        calls.append(message.topic)
        raise RuntimeError("callback bug")

    listener = BrokerListener(
        f"mqtt://{USERNAME}:{PASSWORD}@127.0.0.1:{mosquitto.tcp_port}", [TOPIC], on_message=explode, qos=1
    )
    runner = threading.Thread(target=listener.start)
    runner.start()
    try:
        assert listener.wait_connected(30)
        publish(mosquitto, TOPIC, [b"1", b"2"])
        _wait(lambda: len(calls) == 2)
    finally:
        listener.stop()
        runner.join(15)
    assert not runner.is_alive()
    assert listener.messages_received == 2


def _listen(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mqtthub", "listen", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_line(process: subprocess.Popen[str], needle: str) -> list[str]:
    assert process.stderr is not None
    lines = []
    for line in process.stderr:
        lines.append(line)
        if needle in line:
            return lines
    raise AssertionError(f"{needle!r} never printed: {lines}")


def test_cli_prints_pretty_json_with_timestamps(tmp_path: Path, mosquitto: Mosquitto, pki: Certificates) -> None:
    (tmp_path / "ca.pem").write_text(pki.ca_pem)
    (tmp_path / "client.p12").write_bytes(pki.client_p12)
    process = _listen(
        f"mqtts://127.0.0.1:{mosquitto.mtls_port}",
        "--cafile",
        str(tmp_path / "ca.pem"),
        "--p12",
        str(tmp_path / "client.p12"),
        "--p12-password",
        P12_PASSWORD,
        "-t",
        TOPIC,
        "--count",
        "2",
    )
    try:
        _wait_for_line(process, "subscribed to")
        publish(mosquitto, TOPIC, [json.dumps({"cmdType": "WT:1:status:report", "t": 65}).encode(), b"hello"])
        stdout, _ = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0
    header, *rest = stdout.splitlines()
    assert TOPIC in header
    assert "qos=0" in header
    assert header[:4].isdigit()
    assert header.split()[0].endswith("+00:00")
    text = "\n".join(rest)
    assert '  "cmdType": "WT:1:status:report",' in text
    assert text.rstrip().endswith("hello")


def test_cli_stops_cleanly_on_ctrl_c(mosquitto: Mosquitto) -> None:
    process = _listen(f"ws://127.0.0.1:{mosquitto.ws_port}/mqtt", "-t", "#")
    try:
        _wait_for_line(process, "subscribed to")
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=15)
    finally:
        process.kill()
    assert process.returncode == 0


def test_cli_refuses_a_bad_url() -> None:
    process = _listen("http://example.com")
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 2
    assert "not an MQTT URL" in stderr


def test_the_client_package_imports_no_server_code() -> None:
    code = (
        "import sys, mqtthub.client.listener, mqtthub.client.tls, mqtthub.client.connection\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('fastapi', 'sqlalchemy', 'uvicorn')"
        " or m.startswith(('mqtthub.broker', 'mqtthub.integrations', 'mqtthub.db', 'mqtthub.hub'))]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


async def test_cli_listens_with_a_stored_product_configuration(tmp_path: Path, mosquitto: Mosquitto) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
    await upgrade(url)
    async with Database(url) as database:
        product_id, _ = await seed(database, mosquitto, [{"name": "tick", "actions": []}], use_shared=True)
    env_file = tmp_path / "hub.env"
    env_file.write_text(f"MQTTHUB_DATABASE_URL={url}\nMQTTHUB_SECRET_KEY={SECRET_KEY}\nMQTTHUB_DATA_DIR={tmp_path}\n")
    process = _listen("--product", product_id, "--env-file", str(env_file), "--count", "1")
    try:
        await asyncio.to_thread(_wait_for_line, process, "subscribed to /v3/applications/ABC123/business-events")
        await asyncio.to_thread(publish, mosquitto, "/v3/applications/ABC123/business-events", [b'{"event": "tick"}'])
        stdout, _ = await asyncio.to_thread(process.communicate, timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0
    assert '"event": "tick"' in stdout


async def test_cli_refuses_an_unknown_product(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
    await upgrade(url)
    env_file = tmp_path / "hub.env"
    env_file.write_text(f"MQTTHUB_DATABASE_URL={url}\nMQTTHUB_SECRET_KEY={SECRET_KEY}\n")
    process = _listen("--product", "no-such-product", "--env-file", str(env_file))
    _, stderr = await asyncio.to_thread(process.communicate, timeout=30)
    assert process.returncode == 2
    assert "no-such-product does not exist or has no MQTT configuration" in stderr
