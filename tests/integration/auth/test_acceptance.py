"""The issue's acceptance flows against a whole hub, over real sockets.

- Document 000: login → create an MQTT API token → paho over WSS ``/mqtt`` (TLS, test CA) with the
  token as user name and password → ``device/+/telemetry/#`` brings the organization's telemetry and
  none of another's (retained included) → its publish is refused → ``DELETE`` the token → disconnected
  within a second → an expired token is refused with CONNACK 5. Run on a real ``mqtthub serve`` process.
- Devices with their tokens via paho and ``mosquitto_pub``, refused on another device's topic.
- A PKCS#12 certificate from the API connects on the TLS listener; after revocation it is refused.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from mqtthub.auth.ca import CA_CERT_NAME
from tests.conftest import require
from tests.integration.auth.mqttclient import PahoClient, connect
from tests.integration.auth.test_broker_mqtt import assert_no_message
from tests.support.hubproc import serve_process
from tests.support.served import hub_settings, serve_in_process
from tests.support.tls import certificate_tls, tls_overrides


async def api_tenant(client: httpx.AsyncClient, name: str, short_id: str) -> dict[str, str]:
    """An organization with one device and a device token, made through the API."""
    organization = (await client.post("/api/v1/organizations", json={"name": name, "short_id": short_id})).json()
    devices = f"/api/v1/organizations/{organization['id']}/devices"
    device = (await client.post(devices, json={"name": f"{name} sensor"})).json()
    token = (await client.post(f"{devices}/{device['id']}/tokens", json={})).json()["token"]
    return {"org_id": organization["id"], "device_id": device["id"], "device_token": token}


async def device_client(port: int, tenant: dict[str, str]) -> PahoClient:
    code, client = await connect(port, tenant["device_id"], tenant["device_token"], client_id=tenant["device_id"])
    assert code == 0
    return client


async def test_document_000_flow_on_a_served_hub(tmp_path: Path) -> None:
    overrides = tls_overrides(tmp_path)
    with serve_process(tmp_path, data_dir=tmp_path, wait_for=("MQTT", "MQTT WSS"), **overrides) as hub:
        mqtt_port, wss_port = hub.port("MQTT"), hub.port("MQTT WSS")
        async with hub.admin.async_http() as api:
            acme = await api_tenant(api, "Acme", "acme0001")
            globex = await api_tenant(api, "Globex", "globex01")
            tokens = f"/api/v1/organizations/{acme['org_id']}/mqtt-tokens"
            created = await api.post(
                tokens,
                json={"name": "My Application Token", "description": "dashboard", "expires_in_days": 90},
            )
            assert created.status_code == 201
            token = created.json()["token"]
            assert token.startswith("mqh_mqtt_acme0001_")

            # Retained telemetry in both organizations, published before the app connects.
            for tenant, value in ((acme, b'{"value": 21.5}'), (globex, b'{"value": 99}')):
                device = await device_client(mqtt_port, tenant)
                await device.publish(f"device/{tenant['device_id']}/telemetry/temperature", value, retain=True)
                device.close()

            tls = ssl.create_default_context(cafile=str(tmp_path / CA_CERT_NAME))
            code, app = await connect(
                wss_port,
                token,
                token,
                transport="websockets",
                tls=tls,
                client_id=f"my-app-{time.time():.0f}",
                host="localhost",
            )
            assert code == 0
            assert await app.subscribe("device/+/telemetry/#") == [1]
            retained = await app.next_message()
            assert retained.topic == f"device/{acme['device_id']}/telemetry/temperature"
            assert retained.payload == b'{"value": 21.5}'

            acme_device = await device_client(mqtt_port, acme)
            globex_device = await device_client(mqtt_port, globex)
            await globex_device.publish(f"device/{globex['device_id']}/telemetry/humidity", b"1")
            await acme_device.publish(f"device/{acme['device_id']}/telemetry/humidity", b"2")
            live = await app.next_message()
            assert (live.topic, live.payload) == (f"device/{acme['device_id']}/telemetry/humidity", b"2")
            await assert_no_message(app)

            # Subscribe-only: the app's publish reaches nobody.
            assert await acme_device.subscribe(f"devices/{acme['device_id']}/commands") == [1]
            await app.publish(f"devices/{acme['device_id']}/commands", b'{"command": "restart"}')
            await assert_no_message(acme_device)

            details = (await api.get(f"{tokens}/{created.json()['token_id']}")).json()
            assert details["last_used_at"] is not None

            revoked = await api.delete(f"{tokens}/{created.json()['token_id']}")
            assert revoked.status_code == 200
            # The promise: disconnected within one second of the revocation.
            assert await app.wait_disconnected(timeout=1.0)
            app.close()
            code, _ = await connect(wss_port, token, token, transport="websockets", tls=tls, host="localhost")
            assert code == 5

            # An expired token (its expiry moved into the past, as time would) is refused with code 5.
            second = (await api.post(tokens, json={"name": "short-lived", "expires_in_days": 1})).json()
            with sqlite3.connect(tmp_path / "mqtthub.db") as database:
                database.execute(
                    "UPDATE mqtt_api_tokens SET expires_at = '2020-01-01 00:00:00.000000' WHERE id = ?",
                    (second["token_id"],),
                )
            code, _ = await connect(
                wss_port, second["token"], second["token"], transport="websockets", tls=tls, host="localhost"
            )
            assert code == 5
            code, _ = await connect(mqtt_port, second["token"], second["token"])
            assert code == 5
            for client in (acme_device, globex_device):
                client.close()


async def test_devices_with_paho_and_mosquitto_pub(tmp_path: Path) -> None:
    require(shutil.which("mosquitto_pub") is not None, "mosquitto_pub (apt-get install mosquitto-clients)")
    settings = hub_settings(tmp_path)
    async with serve_in_process(settings) as running:
        port = running.mqtt_port
        acme = await api_tenant(running.client, "Acme", "acme0001")
        other = await api_tenant(running.client, "Other", "other001")
        token = (
            await running.client.post(
                f"/api/v1/organizations/{acme['org_id']}/mqtt-tokens",
                json={"name": "watcher", "permissions": {"subscribe": ["devices/+/datastream", "devices/+/status"]}},
            )
        ).json()["token"]
        code, watcher = await connect(port, token, token)
        assert code == 0
        assert await watcher.subscribe("devices/+/datastream") == [1]
        assert await watcher.subscribe("devices/+/status") == [1]

        definition = await running.client.post(
            f"/api/v1/devices/{acme['device_id']}/telemetry-definitions", json={"key": "temperature", "unit": "C"}
        )
        assert definition.status_code == 201, definition.text
        reading = json.dumps({"value": 25.6, "telemetryDataId": definition.json()["data"]["id"]}).encode()
        device = await device_client(port, acme)
        await device.publish(f"devices/{acme['device_id']}/datastream", reading)
        assert (await watcher.next_message()).topic == f"devices/{acme['device_id']}/datastream"
        # Another device's topic, in its own organization or named after another organization's device.
        await device.publish("devices/someone-else/datastream", b"x")
        await device.publish(f"devices/{other['device_id']}/status", b"x")
        await assert_no_message(watcher)

        base = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-V", "mqttv311"]
        credentials = ["-u", acme["device_id"], "-P", acme["device_token"], "-i", "mosq-device"]

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([*base, *args], capture_output=True, text=True, timeout=30)

        own = await asyncio.to_thread(
            run, *credentials, "-t", f"devices/{acme['device_id']}/status", "-m", '{"status": "online"}'
        )
        assert own.returncode == 0, own.stderr
        status = await watcher.next_message()
        assert (status.topic, status.payload) == (f"devices/{acme['device_id']}/status", b'{"status": "online"}')
        foreign = await asyncio.to_thread(run, *credentials, "-t", "devices/someone-else/status", "-m", "x")
        assert foreign.returncode == 0  # 3.1.1 cannot refuse a publish: it is dropped
        await assert_no_message(watcher)
        wrong = await asyncio.to_thread(
            run, "-u", acme["device_id"], "-P", "wrong", "-t", f"devices/{acme['device_id']}/status", "-m", "x"
        )
        assert wrong.returncode != 0
        assert "not authori" in wrong.stderr.lower()
        device.close()
        watcher.close()


async def test_pkcs12_certificate_on_the_tls_listener_until_revoked(tmp_path: Path) -> None:
    settings = hub_settings(tmp_path, **tls_overrides(tmp_path))
    async with serve_in_process(settings) as running:
        tls_port = running.port("MQTT TLS")
        acme = await api_tenant(running.client, "Acme", "acme0001")
        issued = await running.client.post(
            f"/api/v1/organizations/{acme['org_id']}/devices/{acme['device_id']}/certificate"
        )
        assert issued.status_code == 201
        data: dict[str, Any] = issued.json()["data"]
        async with httpx.AsyncClient() as anonymous:
            bundle = (await anonymous.get(data["p12Url"])).content
        tls = certificate_tls(bundle, data["p12Password"], tmp_path)
        code, client = await connect(tls_port, tls=tls, client_id=data["clientId"])
        assert code == 0
        assert await client.subscribe(data["subTopics"][0]) == [1]

        revoked = await running.client.delete(
            f"/api/v1/organizations/{acme['org_id']}/certificates/{issued.json()['serial']}"
        )
        assert revoked.status_code == 200
        assert await client.wait_disconnected(timeout=1.0)
        client.close()
        code, _ = await connect(tls_port, tls=tls, client_id=data["clientId"])
        assert code == 5


async def test_deleting_an_organization_disconnects_its_clients(tmp_path: Path) -> None:
    settings = hub_settings(tmp_path)
    async with serve_in_process(settings) as running:
        port = running.mqtt_port
        doomed = await api_tenant(running.client, "Doomed", "doomed01")
        kept = await api_tenant(running.client, "Kept", "kept0001")
        token = (
            await running.client.post(f"/api/v1/organizations/{doomed['org_id']}/mqtt-tokens", json={"name": "app"})
        ).json()["token"]
        code, app = await connect(port, token, token)
        assert code == 0
        device = await device_client(port, doomed)
        survivor = await device_client(port, kept)
        assert (await running.client.delete(f"/api/v1/organizations/{doomed['org_id']}")).status_code == 204
        assert await app.wait_disconnected(timeout=1.0)
        assert await device.wait_disconnected(timeout=1.0)
        assert not survivor.disconnected.is_set()
        code, _ = await connect(port, token, token)
        assert code == 5
        for client in (app, device, survivor):
            client.close()
