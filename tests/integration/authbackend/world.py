"""A running hub serving the auth backend, the identities of the identity matrix, and the matrix itself.

Every contract's tests and the embedded broker's are asked the same questions (:data:`LOGINS`, :data:`TOPICS`)
and must give the expected answers, so the contracts cannot drift from the embedded broker nor from each other.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from mqtthub.auth.device_tokens import issue_device_token
from mqtthub.auth.devices import create_device, set_device_enabled
from mqtthub.auth.mqtt_tokens import issue_api_token, revoke_api_token
from mqtthub.auth.organizations import create_organization
from mqtthub.db.base import utcnow
from mqtthub.models import Device, DeviceToken, MqttApiToken
from tests.support.access import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.support.served import LocalHub, hub_settings, serve_in_process

SECRET = "a-shared-secret-of-the-brokers"
RULES = "global deny subscribe org/+/secrets/#\n"
"""An operator rule: even administrators may not read any organization's ``secrets`` topics."""


@dataclass(frozen=True)
class Identity:
    """Credentials as a client presents them, the organization prefix of its topics and its vhost."""

    username: str
    password: str
    mountpoint: str
    vhost: str


@dataclass
class World:
    """The running hub and every identity of the matrix, by name."""

    running: LocalHub
    backend_url: str
    """Where the brokers ask: the auth backend's own port, or the API's (mounted at ``/auth-backend``)."""
    identities: dict[str, Identity]
    short_id: str
    other_short_id: str
    device_id: str
    other_device_id: str

    def identity(self, name: str) -> Identity:
        return self.identities[name]


@asynccontextmanager
async def auth_backend_world(
    database_url: str, tmp_path: Path, *, own_port: bool = False, **overrides: object
) -> AsyncIterator[World]:
    """A hub with the auth backend on (and the operator rule above), and two organizations of identities.

    ``own_port``: serve the auth backend on a port of its own (``auth_backend_port``) rather than on the API's.
    """
    rules = tmp_path / "rules.txt"
    rules.write_text(RULES)
    if own_port:
        overrides["auth_backend_port"] = 0
    settings = hub_settings(
        tmp_path, database_url=database_url, auth_backend_secret=SECRET, mqtt_rules_file=rules, **overrides
    )
    async with serve_in_process(settings) as running:
        hub = running.hub
        async with hub.database.session() as session:
            acme = await create_organization(session, "Acme", "acme0001")
            other = await create_organization(session, "Other", "other001")
            device = await create_device(session, acme.id, "sensor")
            disabled = await create_device(session, acme.id, "retired")
            foreign = await create_device(session, other.id, "foreign")
            tokens = {
                "device": await issue_device_token(session, hub.secrets, device, lifetime=None),
                "disabled": await issue_device_token(session, hub.secrets, disabled, lifetime=None),
                "foreign": await issue_device_token(session, hub.secrets, foreign, lifetime=None),
                "expired_device": await issue_device_token(session, hub.secrets, device, lifetime=timedelta(days=1)),
            }
            app = await issue_api_token(
                session,
                hub.secrets,
                acme.id,
                name="app",
                lifetime=timedelta(days=30),
                publish=["app/out/#"],
                subscribe=["device/+/telemetry/#", "app/in/+"],
            )
            reader = await issue_api_token(session, hub.secrets, acme.id, name="reader", lifetime=timedelta(days=30))
            revoked = await issue_api_token(session, hub.secrets, acme.id, name="revoked", lifetime=timedelta(days=30))
            expired = await issue_api_token(session, hub.secrets, acme.id, name="expired", lifetime=timedelta(days=30))
        async with hub.database.session() as session:
            retired = await session.get(Device, disabled.id)
            assert retired is not None
            await set_device_enabled(session, retired, False)
            record = await session.scalar(select(MqttApiToken).where(MqttApiToken.id == revoked.record.id))
            assert record is not None
            await revoke_api_token(session, record)
            expired_record = await session.get(MqttApiToken, expired.record.id)
            assert expired_record is not None
            expired_record.expires_at = utcnow() - timedelta(minutes=1)
            device_token = await session.get(DeviceToken, tokens["expired_device"].record.id)
            assert device_token is not None
            device_token.expires_at = utcnow() - timedelta(minutes=1)
        mount, other_mount = "org/acme0001/", "org/other001/"
        identities = {
            "device": Identity(device.id, tokens["device"].token, mount, acme.short_id),
            "device_wrong_token": Identity(device.id, tokens["foreign"].token, mount, acme.short_id),
            "device_expired_token": Identity(device.id, tokens["expired_device"].token, mount, acme.short_id),
            "disabled_device": Identity(disabled.id, tokens["disabled"].token, mount, acme.short_id),
            "foreign_device": Identity(foreign.id, tokens["foreign"].token, other_mount, other.short_id),
            "app": Identity(app.token, app.token, mount, acme.short_id),
            "reader": Identity(reader.token, reader.token, mount, acme.short_id),
            "revoked_token": Identity(revoked.token, revoked.token, mount, acme.short_id),
            "expired_token": Identity(expired.token, expired.token, mount, acme.short_id),
            "admin": Identity(ADMIN_EMAIL, ADMIN_PASSWORD, "", ""),
            "admin_wrong_password": Identity(ADMIN_EMAIL, "not the password", "", ""),
        }
        address = hub.auth_backend_address
        backend_url = running.http_url if address is None else f"http://{address[0]}:{address[1]}"
        yield World(running, backend_url, identities, acme.short_id, other.short_id, device.id, foreign.id)


LOGINS: dict[str, bool] = {
    "device": True,
    "device_wrong_token": False,
    "device_expired_token": False,
    "disabled_device": False,
    "foreign_device": True,
    "app": True,
    "reader": True,
    "revoked_token": False,
    "expired_token": False,
    "admin": True,
    "admin_wrong_password": False,
}
"""Who may log in."""


@dataclass(frozen=True)
class TopicCase:
    """One topic question: an identity, ``publish`` or ``subscribe``, the topic as the client writes it in its
    own namespace (``{device}``: the matrix device's id, ``{foreign}``: the other organization's device's id,
    ``{other}``: the other organization's short id), and the answer."""

    identity: str
    action: str
    topic: str
    allowed: bool

    def written(self, world: World) -> str:
        return self.topic.format(device=world.device_id, foreign=world.other_device_id, other=world.other_short_id)


TOPICS: tuple[TopicCase, ...] = (
    TopicCase("device", "publish", "devices/{device}/datastream", True),
    TopicCase("device", "publish", "device/{device}/telemetry/temp", True),
    TopicCase("device", "publish", "devices/{foreign}/datastream", False),
    TopicCase("device", "subscribe", "devices/{device}/commands", True),
    TopicCase("device", "subscribe", "devices/+/commands", False),
    TopicCase("device", "subscribe", "#", False),
    TopicCase("device", "publish", "$SYS/broker/uptime", False),
    TopicCase("app", "publish", "app/out/alerts", True),
    TopicCase("app", "publish", "devices/{device}/commands", False),
    TopicCase("app", "subscribe", "device/+/telemetry/#", True),
    TopicCase("app", "subscribe", "device/{device}/telemetry/temp", True),
    TopicCase("app", "subscribe", "$share/workers/device/+/telemetry/#", True),
    TopicCase("app", "subscribe", "app/in/x", True),
    TopicCase("app", "subscribe", "device/#", False),
    TopicCase("app", "subscribe", "$SYS/#", False),
    TopicCase("reader", "subscribe", "device/+/telemetry/#", True),
    TopicCase("reader", "publish", "device/{device}/telemetry/temp", False),
    TopicCase("foreign_device", "publish", "devices/{foreign}/datastream", True),
    TopicCase("foreign_device", "publish", "devices/{device}/datastream", False),
    TopicCase("admin", "subscribe", "$SYS/#", True),
    TopicCase("admin", "subscribe", "org/+/device/+/telemetry/#", True),
    TopicCase("admin", "publish", "org/{other}/devices/{foreign}/commands", True),
    TopicCase("admin", "subscribe", "org/{other}/secrets/#", False),
    TopicCase("admin", "subscribe", "#", False),
    TopicCase("admin", "publish", "$SYS/broker/uptime", False),
    TopicCase("revoked_token", "subscribe", "device/+/telemetry/#", False),
    TopicCase("disabled_device", "publish", "devices/{device}/datastream", False),
)
"""What each identity may do with topics (the operator's rule denies ``#`` to administrators too, since it could
receive the secrets topics)."""
