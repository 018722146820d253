"""Changes made in the database behind the hub's back (the CLI) disconnect the MQTT clients concerned."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import delete, select

from mqtthub.auth.certificates import revoke_certificate
from mqtthub.auth.device_tokens import list_device_tokens, revoke_device_token
from mqtthub.auth.revalidation import CredentialRevalidator
from mqtthub.auth.users import set_user_active
from mqtthub.config import Settings
from mqtthub.db import Database
from mqtthub.models import Device, MqttApiToken, User
from tests.conftest import require
from tests.integration.auth.mqttclient import PahoClient, connect
from tests.integration.auth.test_acceptance import api_tenant
from tests.support.access import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.support.served import hub_settings, serve_in_process
from tests.support.tls import certificate_tls, tls_overrides

WAIT = 10.0  # generous: the check runs every 0.2 s here


def cli(tmp_path: Path, *args: str) -> str:
    """Run ``mqtthub <args>`` against the hub's database, as an operator would while it runs."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("MQTTHUB_")}
    env |= {"MQTTHUB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}", "MQTTHUB_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "mqtthub", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def settings_for(tmp_path: Path) -> Settings:
    return hub_settings(tmp_path, mqtt_revalidate_interval=0.2)


async def connected(port: int, username: str, password: str, client_id: str) -> PahoClient:
    code, client = await connect(port, username, password, client_id=client_id)
    assert code == 0
    return client


async def test_cli_device_disable_and_token_revoke_disconnect_live_clients(tmp_path: Path) -> None:
    async with serve_in_process(settings_for(tmp_path)) as running:
        port = running.mqtt_port
        doomed = await api_tenant(running.client, "Acme", "acme0001")
        kept = await api_tenant(running.client, "Globex", "globex01")
        tokens = f"/api/v1/organizations/{doomed['org_id']}/mqtt-tokens"
        created = (await running.client.post(tokens, json={"name": "doomed app"})).json()
        other = (await running.client.post(tokens, json={"name": "kept app"})).json()

        device = await connected(port, doomed["device_id"], doomed["device_token"], "doomed-device")
        survivor = await connected(port, kept["device_id"], kept["device_token"], "kept-device")
        app = await connected(port, created["token"], created["token"], "doomed-app")
        other_app = await connected(port, other["token"], other["token"], "kept-app")
        try:
            # The CLI runs in a thread: the hub shares this event loop and must keep serving meanwhile.
            assert "disabled" in await asyncio.to_thread(cli, tmp_path, "device", "disable", doomed["device_id"])
            assert await device.wait_disconnected(WAIT)
            code, _ = await connect(port, doomed["device_id"], doomed["device_token"], client_id="again")
            assert code == 5

            assert "revoked" in await asyncio.to_thread(cli, tmp_path, "token", "revoke", created["token_id"])
            assert await app.wait_disconnected(WAIT)

            # Several checks have run since: the valid clients are still there and still served.
            assert not survivor.disconnected.is_set()
            assert not other_app.disconnected.is_set()
            assert await survivor.subscribe(f"devices/{kept['device_id']}/commands") == [1]
            assert await other_app.subscribe("device/+/telemetry/#") == [1]
        finally:
            for client in (device, survivor, app, other_app):
                client.close()


async def test_revoking_one_device_token_disconnects_only_its_connections(tmp_path: Path) -> None:
    async with serve_in_process(settings_for(tmp_path)) as running:
        port = running.mqtt_port
        tenant = await api_tenant(running.client, "Acme", "acme0001")
        device_id = tenant["device_id"]
        second = (
            await running.client.post(f"/api/v1/organizations/{tenant['org_id']}/devices/{device_id}/tokens", json={})
        ).json()
        first = await connected(port, device_id, tenant["device_token"], "first-token")
        other = await connected(port, device_id, second["token"], "second-token")
        try:
            # The change comes from outside the hub: another process's database connection, no broker to tell.
            async with Database(running.hub.settings.database_url) as database, database.session() as session:
                device = await session.get(Device, device_id)
                assert device is not None
                await revoke_device_token(session, device, second["id"])
            assert await other.wait_disconnected(WAIT)
            assert not first.disconnected.is_set()
            assert await first.subscribe(f"devices/{device_id}/commands") == [1]
        finally:
            first.close()
            other.close()


async def test_revoked_certificate_and_deactivated_administrator_are_disconnected(tmp_path: Path) -> None:
    settings = hub_settings(
        tmp_path,
        mqtt_revalidate_interval=0.2,
        **tls_overrides(tmp_path),
    )
    async with serve_in_process(settings) as running:
        port = running.mqtt_port
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
        code, by_certificate = await connect(tls_port, tls=tls, client_id=data["clientId"])
        assert code == 0
        admin = await connected(port, ADMIN_EMAIL, ADMIN_PASSWORD, "admin")
        device = await connected(port, acme["device_id"], acme["device_token"], "device")
        try:
            async with Database(running.hub.settings.database_url) as database:
                async with database.session() as session:
                    await revoke_certificate(session, acme["org_id"], issued.json()["serial"])
                assert await by_certificate.wait_disconnected(WAIT)
                assert not admin.disconnected.is_set()

                async with database.session() as session:
                    user = await session.scalar(select(User).where(User.email == ADMIN_EMAIL))
                    assert user is not None
                    await set_user_active(session, user, False)
                assert await admin.wait_disconnected(WAIT)
            assert not device.disconnected.is_set()
            assert await device.subscribe(f"devices/{acme['device_id']}/commands") == [1]
        finally:
            for client in (by_certificate, admin, device):
                client.close()


async def test_a_check_with_nobody_to_disconnect_changes_nothing(tmp_path: Path) -> None:
    async with serve_in_process(settings_for(tmp_path)) as running:
        port = running.mqtt_port
        tenant = await api_tenant(running.client, "Acme", "acme0001")
        client = await connected(port, tenant["device_id"], tenant["device_token"], "device")
        try:
            revalidator = CredentialRevalidator(running.hub.database, running.hub.broker, 1.0)
            assert await revalidator.check() == 0
            assert revalidator.disconnected == 0
            assert not client.disconnected.is_set()
        finally:
            client.close()


def test_the_interval_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        Settings(_env_file=None, mqtt_revalidate_interval=0)
    with pytest.raises(ValueError, match="positive"):
        CredentialRevalidator(None, None, -1.0)  # type: ignore[arg-type]


async def test_restored_sessions_of_an_identity_gone_while_stopped_are_discarded(tmp_path: Path) -> None:
    require(shutil.which("mosquitto_sub") is not None, "mosquitto-clients")
    settings = settings_for(tmp_path)
    async with serve_in_process(settings) as running:
        tenant = await api_tenant(running.client, "Acme", "acme0001")
        device_id = tenant["device_id"]
        # A persistent session (-c) that subscribes and leaves (-E): it waits for the device, offline.
        subscribe = ["mosquitto_sub", "-p", str(running.mqtt_port), "-c", "-i", "keeps-session", "-q", "1", "-E"]
        subscribe += ["-u", device_id, "-P", tenant["device_token"], "-t", f"devices/{device_id}/commands"]
        done = await asyncio.to_thread(subprocess.run, subscribe, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        assert running.hub.broker.stats().sessions == 1
    # While the hub is stopped, the device is disabled in the database.
    async with Database(settings.database_url) as database, database.session() as session:
        device = await session.get(Device, device_id)
        assert device is not None
        device.enabled = False
    async with serve_in_process(settings) as running:
        deadline = asyncio.get_running_loop().time() + WAIT
        while running.hub.broker.stats().sessions:
            assert asyncio.get_running_loop().time() < deadline, "the restored session was not discarded"
            await asyncio.sleep(0.05)
        assert running.hub.broker.stats().sessions_discarded == 1


async def test_rounds_between_full_ones_look_only_at_what_was_revoked_or_disabled(tmp_path: Path) -> None:
    # The hub's own revalidator stays out of the way: this test drives its own rounds.
    settings = hub_settings(tmp_path, mqtt_revalidate_interval=3600)
    async with serve_in_process(settings) as running:
        port = running.mqtt_port
        tenant = await api_tenant(running.client, "Acme", "acme0001")
        tokens = f"/api/v1/organizations/{tenant['org_id']}/mqtt-tokens"
        created = (await running.client.post(tokens, json={"name": "doomed app"})).json()
        device = await connected(port, tenant["device_id"], tenant["device_token"], "device")
        app = await connected(port, created["token"], created["token"], "app")
        revalidator = CredentialRevalidator(running.hub.database, running.hub.broker, 1.0, full_every=3)
        try:
            assert await revalidator.check() == 0  # round 1: every client, all valid
            async with Database(running.hub.settings.database_url) as database:
                async with database.session() as session:
                    record = await session.get(Device, tenant["device_id"])
                    assert record is not None
                    token_id = (await list_device_tokens(session, record.id))[0].id
                    await revoke_device_token(session, record, token_id)
                assert await revalidator.check() == 1  # round 2: the revoked token, found by its time
                assert await device.wait_disconnected(WAIT)

                async with database.session() as session:
                    await session.execute(delete(MqttApiToken).where(MqttApiToken.id == created["token_id"]))
                # A deleted row leaves no time behind: round 3 does not see it, the full round 4 does.
                assert await revalidator.check() == 0
                assert not app.disconnected.is_set()
                assert await revalidator.check() == 1
                assert await app.wait_disconnected(WAIT)
        finally:
            device.close()
            app.close()
