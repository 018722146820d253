"""MQTT over real sockets: the embedded broker with the database-backed hooks, real paho and mosquitto clients.

Covers what a device, an app and a certificate holder see: accepted and refused CONNECTs
(CONNACK 5 in 3.1.1), the topic ACLs, organization isolation through wildcards and retained
messages, and disconnection within a second when access is withdrawn.
"""

from __future__ import annotations

import asyncio
import functools
import queue
import shutil
import ssl
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from paho.mqtt.enums import MQTTProtocolVersion

from mqtthub.auth.bootstrap import bootstrap_first_run
from mqtthub.auth.broker_hooks import DatabaseAuthenticator, TopicAuthorizer
from mqtthub.auth.ca import CertificateAuthority
from mqtthub.auth.certificates import issue_certificate, revoke_certificate, take_download
from mqtthub.auth.device_tokens import issue_device_token
from mqtthub.auth.devices import create_device, set_device_enabled
from mqtthub.auth.live import AccessEnded, apply_access_ended
from mqtthub.auth.mqtt_tokens import get_api_token, issue_api_token, revoke_api_token
from mqtthub.auth.organizations import create_organization
from mqtthub.auth.passwords import PasswordWorkers
from mqtthub.auth.users import create_user, set_user_active
from mqtthub.broker.config import BrokerConfig, ListenerConfig
from mqtthub.broker.server import Broker
from mqtthub.config import Settings
from mqtthub.crypto import SecretBox
from mqtthub.db import Database
from mqtthub.db.changes import ChangeBus
from mqtthub.db.migrate import upgrade
from mqtthub.models import Device, User
from tests.conftest import require
from tests.integration.auth.mqttclient import PahoClient, connect

V5 = MQTTProtocolVersion.MQTTv5


@dataclass
class Tenant:
    org_id: str
    device_id: str
    device_token: str
    api_token: str
    api_token_id: str


@dataclass
class Stack:
    database: Database
    secrets: SecretBox
    ca: CertificateAuthority
    broker: Broker
    acme: Tenant
    globex: Tenant
    tmp_path: Path

    def port(self, listener: str) -> int:
        return self.broker.addresses[listener][1]

    def client_tls(self, certfile: Path | None = None, keyfile: Path | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca.cert_file))
        if certfile is not None:
            context.load_cert_chain(certfile, keyfile)
        return context


async def add_tenant(database: Database, secrets: SecretBox, name: str, short_id: str) -> Tenant:
    async with database.session() as session:
        organization = await create_organization(session, name, short_id)
        device = await create_device(session, organization.id, f"{name} sensor")
        device_token = await issue_device_token(session, secrets, device, lifetime=timedelta(days=1))
        api_token = await issue_api_token(session, secrets, organization.id, name="app", lifetime=timedelta(days=90))
    return Tenant(organization.id, device.id, device_token.token, api_token.token, api_token.record.id)


@pytest.fixture
async def stack(database_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    await upgrade(database_url)
    secrets = SecretBox("t" * 48)
    settings = Settings(_env_file=None, database_url=database_url, data_dir=tmp_path)
    ca = CertificateAuthority.load_or_create(settings)
    server = ca.issue_server_certificate()
    (tmp_path / "server.pem").write_bytes(server.certificate_pem())
    (tmp_path / "server.key").write_bytes(server.private_key_pem())
    certfile, keyfile = tmp_path / "server.pem", tmp_path / "server.key"
    config = BrokerConfig(
        listeners=(
            ListenerConfig(name="tcp", port=0),
            ListenerConfig(name="tls", kind="tls", port=0, certfile=certfile, keyfile=keyfile, cafile=ca.cert_file),
            ListenerConfig(name="wss", kind="wss", port=0, certfile=certfile, keyfile=keyfile, cafile=ca.cert_file),
        ),
        sys_interval=0,
        housekeeping_interval=0.1,
    )
    changes = ChangeBus()
    async with Database(database_url, changes=changes) as database:
        async with database.session() as session:
            await bootstrap_first_run(
                session, admin_email="root@example.com", admin_password="password1", organization_name="default"
            )
        acme = await add_tenant(database, secrets, "acme", "acme0001")
        globex = await add_tenant(database, secrets, "globex", "globex01")
        authenticator = DatabaseAuthenticator(database, secrets, settings)
        async with Broker(config, authenticator=authenticator, authorizer=TopicAuthorizer()) as broker:
            changes.subscribe(AccessEnded, functools.partial(apply_access_ended, broker))
            yield Stack(database, secrets, ca, broker, acme, globex, tmp_path)
        await authenticator.settle()  # before the database closes


async def connected(stack: Stack, username: str, password: str, **options: object) -> PahoClient:
    code, client = await connect(stack.port("tcp"), username, password, **options)  # type: ignore[arg-type]
    assert code == 0
    return client


async def assert_no_message(client: PahoClient, wait: float = 0.5) -> None:
    try:
        message = await client.next_message(timeout=wait)
    except queue.Empty:
        return
    raise AssertionError(f"unexpected message on {message.topic}")


async def test_app_token_reads_only_its_organization_and_cannot_publish(stack: Stack) -> None:
    acme, globex = stack.acme, stack.globex
    # A retained message of each organization, on the same topic, before the app subscribes.
    for tenant, value in ((acme, b"21.5"), (globex, b"99.9")):
        device = await connected(stack, tenant.device_id, tenant.device_token)
        await device.publish(f"device/{tenant.device_id}/telemetry/temperature", value, retain=True)
        device.close()

    app = await connected(stack, acme.api_token, acme.api_token)
    assert await app.subscribe("device/+/telemetry/#") == [1]
    retained = await app.next_message()
    assert (retained.topic, retained.payload, retained.retain) == (
        f"device/{acme.device_id}/telemetry/temperature",
        b"21.5",
        True,
    )
    # Globex's device publishes too; the app subscribed with a wildcard still sees only Acme.
    acme_device = await connected(stack, acme.device_id, acme.device_token)
    globex_device = await connected(stack, globex.device_id, globex.device_token)
    await globex_device.publish(f"device/{globex.device_id}/telemetry/temperature", b"50")
    await acme_device.publish(f"device/{acme.device_id}/telemetry/humidity", b"40")
    live = await app.next_message()
    assert (live.topic, live.payload) == (f"device/{acme.device_id}/telemetry/humidity", b"40")
    await assert_no_message(app)

    # Subscribe-only: its publish is dropped (3.1.1 has no way to say no), others' topics refused.
    listener = await connected(stack, acme.device_id, acme.device_token, client_id="listener")
    assert await listener.subscribe(f"devices/{acme.device_id}/commands") == [1]
    await app.publish(f"devices/{acme.device_id}/commands", b"reboot")
    await assert_no_message(listener)
    assert await app.subscribe("#") == [0x80]
    assert await app.subscribe("devices/+/commands") == [0x80]
    for client in (app, acme_device, globex_device, listener):
        client.close()


async def test_device_publishes_its_own_topics_only(stack: Stack) -> None:
    acme = stack.acme
    app = await connected(stack, stack.acme.api_token, stack.acme.api_token)
    await app.subscribe("device/+/telemetry/#")
    device = await connected(stack, acme.device_id, acme.device_token, protocol=V5)
    await device.publish(f"device/{acme.device_id}/telemetry/temperature", b"1")
    assert (await app.next_message()).payload == b"1"
    # Another device's topic: 5.0 gets PUBACK 0x87 (paho reports the publish as done), nothing is routed.
    await device.publish(f"device/{stack.globex.device_id}/telemetry/temperature", b"2")
    await device.publish(f"device/{'0' * 8}-0000-0000-0000-{'0' * 12}/telemetry/temperature", b"3")
    await assert_no_message(app)
    assert await device.subscribe(f"devices/{acme.device_id}/commands") == [1]
    assert await device.subscribe(f"organizations/{acme.org_id}/broadcast") == [1]
    assert await device.subscribe(f"devices/{stack.globex.device_id}/commands") == [0x87]
    assert await device.subscribe("device/+/telemetry/#") == [0x87]
    device.close()
    app.close()


async def test_mosquitto_pub_with_a_device_token(stack: Stack) -> None:
    require(shutil.which("mosquitto_pub") is not None, "mosquitto_pub (apt-get install mosquitto-clients)")
    acme = stack.acme
    app = await connected(stack, acme.api_token, acme.api_token)
    await app.subscribe("device/+/telemetry/#")
    command = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(stack.port("tcp")), "-q", "1"]
    own = [*command, "-u", acme.device_id, "-P", acme.device_token]
    sent = await asyncio.to_thread(
        subprocess.run,
        [*own, "-t", f"device/{acme.device_id}/telemetry/pressure", "-m", "1013"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert sent.returncode == 0, sent.stderr
    assert (await app.next_message()).payload == b"1013"
    wrong = await asyncio.to_thread(
        subprocess.run,
        [*command, "-u", acme.device_id, "-P", "wrong", "-t", f"device/{acme.device_id}/telemetry/x", "-m", "1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert wrong.returncode != 0
    assert "not authori" in wrong.stderr.lower()
    app.close()


async def test_bad_expired_or_revoked_credentials_get_connack_5(stack: Stack) -> None:
    acme = stack.acme
    async with stack.database.session() as session:
        expired = await issue_api_token(session, stack.secrets, acme.org_id, name="old", lifetime=timedelta(seconds=-1))
    for username, password in (
        (acme.device_id, "wrong"),
        (acme.api_token, "not-the-token"),
        (expired.token, expired.token),
        ("mqh_mqtt_acme0001_" + "A" * 32, "mqh_mqtt_acme0001_" + "A" * 32),
    ):
        code, _ = await connect(stack.port("tcp"), username, password)
        assert code == 5, username
    code, _ = await connect(stack.port("tcp"), expired.token, expired.token, protocol=V5)
    assert code == 0x87
    code, _ = await connect(stack.port("tcp"))
    assert code == 5


async def test_revoking_a_token_disconnects_its_clients_within_a_second(stack: Stack) -> None:
    acme = stack.acme
    app = await connected(stack, acme.api_token, acme.api_token)
    bystander = await connected(stack, stack.globex.api_token, stack.globex.api_token)
    async with stack.database.session() as session:
        record = await get_api_token(session, acme.org_id, acme.api_token_id)
        await revoke_api_token(session, record)
    assert await app.wait_disconnected(timeout=1.0)
    assert not bystander.disconnected.is_set()
    code, _ = await connect(stack.port("tcp"), acme.api_token, acme.api_token)
    assert code == 5
    bystander.close()
    app.close()


async def test_a_revocation_that_rolls_back_disconnects_nobody(stack: Stack) -> None:
    acme = stack.acme
    app = await connected(stack, acme.api_token, acme.api_token)

    async def revoke_then_fail() -> None:
        async with stack.database.session() as session:
            record = await get_api_token(session, acme.org_id, acme.api_token_id)
            await revoke_api_token(session, record)
            raise RuntimeError("the request failed after revoking")

    with pytest.raises(RuntimeError):
        await revoke_then_fail()
    assert not await app.wait_disconnected(timeout=0.5)
    code, again = await connect(stack.port("tcp"), acme.api_token, acme.api_token)
    assert code == 0
    again.close()
    app.close()


async def test_disabling_a_device_disconnects_it(stack: Stack) -> None:
    acme = stack.acme
    device = await connected(stack, acme.device_id, acme.device_token)
    async with stack.database.session() as session:
        record = await session.get(Device, acme.device_id)
        assert record is not None
        await set_device_enabled(session, record, False)
    assert await device.wait_disconnected(timeout=1.0)
    code, _ = await connect(stack.port("tcp"), acme.device_id, acme.device_token)
    assert code == 5
    device.close()


async def test_token_expiry_disconnects_the_client(stack: Stack) -> None:
    async with stack.database.session() as session:
        short = await issue_api_token(
            session, stack.secrets, stack.acme.org_id, name="short", lifetime=timedelta(seconds=2)
        )
    app = await connected(stack, short.token, short.token)
    assert not app.disconnected.is_set()
    assert await app.wait_disconnected()
    code, _ = await connect(stack.port("tcp"), short.token, short.token)
    assert code == 5
    app.close()


async def test_pkcs12_certificate_connects_over_tls_until_revoked(stack: Stack) -> None:
    acme = stack.acme
    async with stack.database.session() as session:
        device = await session.get(Device, acme.device_id)
        bundle = await issue_certificate(
            session, stack.secrets, stack.ca, organization_id=acme.org_id, validity=timedelta(days=1), device=device
        )
        _, p12 = await take_download(session, stack.secrets, bundle.download_secret)
    key, certificate, _ = pkcs12.load_key_and_certificates(p12, bundle.p12_password.encode())
    assert key is not None
    assert certificate is not None
    certfile, keyfile = stack.tmp_path / "client.pem", stack.tmp_path / "client.key"
    certfile.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    tls = stack.client_tls(certfile, keyfile)
    code, client = await connect(stack.port("tls"), tls=tls, client_id=bundle.client_id)
    assert code == 0
    assert await client.subscribe(bundle.sub_topics[0]) == [1]
    assert await client.subscribe("device/+/telemetry/#") == [0x80]

    # Without a certificate and without credentials, the TLS listener refuses.
    code, _ = await connect(stack.port("tls"), tls=stack.client_tls())
    assert code == 5

    async with stack.database.session() as session:
        await revoke_certificate(session, acme.org_id, bundle.record.serial)
    assert await client.wait_disconnected(timeout=1.0)
    client.close()
    code, _ = await connect(stack.port("tls"), tls=tls, client_id=bundle.client_id)
    assert code == 5


async def test_app_token_over_wss_with_the_documented_options(stack: Stack) -> None:
    acme = stack.acme
    code, app = await connect(
        stack.port("wss"),
        acme.api_token,
        acme.api_token,
        transport="websockets",
        tls=stack.client_tls(),
        client_id=f"my-app-{time.time():.0f}",
        host="localhost",
    )
    assert code == 0
    assert await app.subscribe("device/+/telemetry/#") == [1]
    device = await connected(stack, acme.device_id, acme.device_token)
    await device.publish(f"device/{acme.device_id}/telemetry/temperature", b'{"value": 21}')
    assert (await app.next_message()).payload == b'{"value": 21}'
    device.close()
    app.close()


async def test_user_certificate_reads_telemetry_until_the_user_is_deactivated(stack: Stack) -> None:
    acme = stack.acme
    async with stack.database.session() as session:
        user = await create_user(
            session, acme.org_id, "viewer@acme.test", "long enough", passwords=PasswordWorkers(threads=1, max_pending=1)
        )
        bundle = await issue_certificate(
            session, stack.secrets, stack.ca, organization_id=acme.org_id, validity=timedelta(days=1), user=user
        )
        _, p12 = await take_download(session, stack.secrets, bundle.download_secret)
    key, certificate, _ = pkcs12.load_key_and_certificates(p12, bundle.p12_password.encode())
    assert key is not None
    assert certificate is not None
    certfile, keyfile = stack.tmp_path / "user.pem", stack.tmp_path / "user.key"
    certfile.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    code, viewer = await connect(stack.port("tls"), tls=stack.client_tls(certfile, keyfile), client_id=bundle.client_id)
    assert code == 0
    assert await viewer.subscribe("device/+/telemetry/#") == [1]
    assert await viewer.subscribe(f"app/user/{user.id}/sub") == [1]
    assert await viewer.subscribe("devices/+/commands") == [0x80]
    device = await connected(stack, acme.device_id, acme.device_token)
    await device.publish(f"device/{acme.device_id}/telemetry/temperature", b"7")
    assert (await viewer.next_message()).payload == b"7"
    async with stack.database.session() as session:
        account = await session.get(User, user.id)
        assert account is not None
        await set_user_active(session, account, False)
    assert await viewer.wait_disconnected(timeout=1.0)
    viewer.close()
    device.close()
    code, _ = await connect(stack.port("tls"), tls=stack.client_tls(certfile, keyfile), client_id=bundle.client_id)
    assert code == 5
