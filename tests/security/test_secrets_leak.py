"""No secret leaves through the log, and the hub's files are its account's alone.

A hub process logging at debug level is exercised with every kind of credential, in headers, in
query strings (the WebSocket routes accept ``?token=`` and ``?api_key=``) and over MQTT; the whole of
its output is then searched for each secret. Every file it created is mode 0600, its data directory 0700.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import stat
from pathlib import Path
from typing import Any

import httpx
import websockets

from mqtthub.logs import configure_logging, redact
from mqtthub.mqtt.codec import encode
from mqtthub.mqtt.packets import PROTOCOL_V311, Connect
from tests.support.hubproc import serve_process

ADMIN = "admin@secrets.test"
PASSWORD = "a password never logged"


async def _mqtt_connect(port: int, username: str, password: str) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(encode(Connect("leak-test", PROTOCOL_V311, username=username, password=password.encode()), 4))
        connack = await asyncio.wait_for(reader.readexactly(4), 10)
        return connack[3]
    finally:
        writer.close()


async def _exercise(http_url: str, mqtt_port: int) -> list[str]:
    """Use every credential the hub issues, every way it accepts it; return the secrets used."""
    ws_url = http_url.replace("http://", "ws://")
    async with httpx.AsyncClient(base_url=http_url, timeout=30) as client:
        login = await client.post("/api/v1/auth/login", json={"email": ADMIN, "password": PASSWORD})
        jwt = login.json()["token"]
        auth = {"Authorization": f"Bearer {jwt}"}
        org = (await client.get("/api/v1/organizations", headers=auth)).json()["organizations"][0]["id"]
        rights = {"subscribe": ["#"], "publish": ["#"]}
        created = await client.post(
            f"/api/v1/organizations/{org}/mqtt-tokens", headers=auth, json={"name": "app", "permissions": rights}
        )
        api_token = created.json()["token"]
        device = (await client.post(f"/api/v1/organizations/{org}/devices", headers=auth, json={"name": "d"})).json()
        devices = f"/api/v1/organizations/{org}/devices/{device['id']}/tokens"
        device_token = (await client.post(devices, headers=auth, json={})).json()["token"]
        await client.post(
            "/publish", headers={"X-API-Key": api_token}, json={"topic": "a/b", "message": "hello", "qos": 0}
        )
        await client.post(
            f"/api/v1/devices/{device['id']}/datastream?token={device_token}",
            headers={"Authorization": f"Bearer {device_token}"},
            json={"value": 1},
        )
        await client.get(f"/messages?api_key={api_token}")
        await client.post("/api/v1/auth/login", json={"email": ADMIN, "password": "wrong " + PASSWORD})
    for url in (f"{ws_url}/ws?api_key={api_token}", f"{ws_url}/api/v1/stream?token={jwt}", f"{ws_url}/ws?token={jwt}"):
        async with websockets.connect(url, open_timeout=10):
            pass
    for username, password in ((api_token, api_token), (device["id"], device_token), (ADMIN, PASSWORD)):
        assert await _mqtt_connect(mqtt_port, username, password) == 0
    assert await _mqtt_connect(mqtt_port, device["id"], device_token + "x") == 5
    return [PASSWORD, jwt, api_token, device_token, jwt.split(".")[2]]


async def test_the_log_holds_no_secret_and_files_are_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with serve_process(
        tmp_path,
        wait_for=("MQTT",),
        admin_email=ADMIN,
        admin_password=PASSWORD,
        data_dir=data_dir,
        database_url=f"sqlite+aiosqlite:///{data_dir / 'hub.db'}",
        log_level="debug",
        log_http_access=True,
    ) as hub:
        secrets = await _exercise(hub.http_url, hub.port("MQTT"))
        hub.stop(signal.SIGTERM)
        output = "\n".join(hub.stdout + hub.stderr)
    assert "ws?" in output or "stream?" in output, "the WebSocket requests were not logged: nothing was tested"
    leaked = [secret[:12] + "…" for secret in secrets if secret in output]
    assert not leaked, f"secrets in the hub's output: {leaked}"

    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    files = [path for path in data_dir.rglob("*") if path.is_file()]
    assert {path.name for path in files} >= {"hub.db", "mqtthub.secret", "mqtthub-ca.key", "broker-state.db"}
    wide = {path.name: oct(stat.S_IMODE(path.stat().st_mode)) for path in files if path.stat().st_mode & 0o077}
    assert not wide, f"files readable by others: {wide}"


def test_existing_wide_files_are_narrowed_at_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    database = data_dir / "hub.db"
    settings: dict[str, Any] = {
        "admin_password": PASSWORD,
        "data_dir": data_dir,
        "database_url": f"sqlite+aiosqlite:///{database}",
    }
    with serve_process(tmp_path, **settings) as hub:
        hub.stop(signal.SIGTERM)
    database.chmod(0o644)
    data_dir.chmod(0o755)
    with serve_process(tmp_path, **settings) as hub:
        hub.stop(signal.SIGTERM)
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700


def test_redaction_covers_every_way_a_credential_is_written() -> None:
    token = "mqh_mqtt_acme4k2p_" + "A" * 32
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    lines = [
        f'("127.0.0.1", 5000) - "WebSocket /ws?api_key={token}&topics=a" [accepted]',
        f"GET /api/v1/stream?token={jwt} HTTP/1.1",
        f"Authorization: Bearer {jwt}",
        "password=hunter2&user=x",
        "mqh_dev_" + "b" * 40,
    ]
    for line in lines:
        cleaned = redact(line)
        assert token not in cleaned
        assert jwt not in cleaned
        assert "hunter2" not in cleaned
        assert "b" * 40 not in cleaned
    assert redact("hint mqh_mqtt_acme4k2p_fPuL… topic=a") == "hint mqh_mqtt_acme4k2p_fPuL… topic=a"


def test_the_configured_handler_redacts_every_logger(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        with path.open("w", encoding="utf-8") as stream:
            for fmt in ("text", "json"):
                configure_logging("info", fmt, stream)
                logging.getLogger("uvicorn.error").info("%s - WebSocket /ws?token=%s", "peer", "eyJa.eyJb.sig")
                try:
                    raise ValueError("failed for ?api_key=mqh_dev_" + "c" * 40)
                except ValueError:
                    logging.getLogger("mqtthub.test").exception("boom")
    finally:
        root.handlers[:], root.level = saved
    text = path.read_text(encoding="utf-8")
    assert "eyJa.eyJb.sig" not in text
    assert "c" * 40 not in text
    assert text.count("***") >= 4
