"""The broker hooks against a real database (SQLite and PostgreSQL), called as the broker calls them."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from mqtthub.auth.acl import TopicRules
from mqtthub.auth.bootstrap import bootstrap_first_run
from mqtthub.auth.broker_hooks import DatabaseAuthenticator, TopicAuthorizer
from mqtthub.auth.credential_cache import CredentialCache
from mqtthub.auth.device_tokens import issue_device_token, revoke_device_token
from mqtthub.auth.devices import create_device, set_device_enabled
from mqtthub.auth.mqtt_tokens import issue_api_token, revoke_api_token
from mqtthub.auth.organizations import create_organization
from mqtthub.broker.hooks import Action, ConnectInfo, Principal
from mqtthub.config import Settings
from mqtthub.crypto import SecretBox
from mqtthub.db import Database
from mqtthub.db.base import utcnow
from mqtthub.db.migrate import upgrade
from mqtthub.errors import AuthenticationRefused
from mqtthub.models import Device, DeviceToken, MqttApiToken, Organization


@dataclass
class World:
    database: Database
    secrets: SecretBox
    default_org_id: str
    org_id: str
    short_id: str
    device_id: str
    device_token: str
    api_token: str
    api_token_id: str
    authenticators: list[DatabaseAuthenticator] = field(default_factory=list)
    """Made by :func:`authenticator`: their background writes end before the database closes."""


def connect(
    username: str | None, password: str | None, *, peer: str = "127.0.0.1:50000", level: int = 4
) -> ConnectInfo:
    return ConnectInfo(
        client_id="c1",
        username=username,
        password=password.encode() if password is not None else None,
        protocol_level=level,
        listener="tcp",
        peer=peer,
    )


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, **overrides)  # type: ignore[arg-type]


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    await upgrade(database_url)
    secrets = SecretBox("s" * 48)
    async with Database(database_url) as database:
        async with database.session() as session:
            first = await bootstrap_first_run(
                session, admin_email="root@example.com", admin_password="password1", organization_name="default"
            )
            assert first is not None
            organization = await create_organization(session, "Acme", "acme0001")
            device = await create_device(session, organization.id, "sensor")
            device_token = await issue_device_token(session, secrets, device, lifetime=timedelta(days=1))
            api_token = await issue_api_token(
                session, secrets, organization.id, name="dashboard", lifetime=timedelta(days=90)
            )
        world = World(
            database,
            secrets,
            first.organization_id,
            organization.id,
            organization.short_id,
            device.id,
            device_token.token,
            api_token.token,
            api_token.record.id,
        )
        yield world
        for made in world.authenticators:
            await made.settle()


def authenticator(world: World, tmp_path: Path, **overrides: object) -> DatabaseAuthenticator:
    made = DatabaseAuthenticator(world.database, world.secrets, make_settings(tmp_path, **overrides))
    world.authenticators.append(made)
    return made


async def test_device_authenticates_with_its_token(world: World, tmp_path: Path) -> None:
    auth = authenticator(world, tmp_path)
    principal = await auth.authenticate(connect(world.device_id, world.device_token))
    await auth.last_used.settle()
    assert principal.id == f"device:{world.device_id}"
    assert principal.kind == "device"
    assert principal.organization_id == world.org_id
    assert principal.mountpoint == "org/acme0001/"
    assert principal.expires_at is not None
    assert 0 < principal.expires_at - time.time() <= 86400
    async with world.database.session() as session:
        token = (await session.scalars(select(DeviceToken))).one()
        assert token.last_used_at is not None


async def test_app_authenticates_with_token_as_username_and_password(world: World, tmp_path: Path) -> None:
    auth = authenticator(world, tmp_path)
    principal = await auth.authenticate(connect(world.api_token, world.api_token))
    await auth.last_used.settle()
    assert principal.id == f"token:{world.api_token_id}"
    assert principal.kind == "app"
    assert principal.mountpoint == "org/acme0001/"
    assert world.api_token.startswith("mqh_mqtt_acme0001_")
    rules = TopicRules.from_attributes(principal.attributes)
    assert rules == TopicRules(publish=(), subscribe=("device/+/telemetry/#",))
    async with world.database.session() as session:
        record = await session.get(MqttApiToken, world.api_token_id)
        assert record is not None
        assert record.last_used_at is not None


UNKNOWN_API_TOKEN = "mqh_mqtt_acme0001_" + "x" * 32
BAD_CREDENTIALS: dict[str, Callable[[World], tuple[str | None, str | None]]] = {
    "wrong device token": lambda w: (w.device_id, "wrong"),
    "API token with another password": lambda w: (w.api_token, w.device_token),
    "API token as device password": lambda w: (w.device_id, w.api_token),
    "unknown API token": lambda w: (UNKNOWN_API_TOKEN, UNKNOWN_API_TOKEN),
    "malformed API token": lambda w: ("mqh_mqtt_bogus", "mqh_mqtt_bogus"),
    "device id that is no UUID": lambda w: ("not-a-uuid", w.device_token),
    "device without password": lambda w: (w.device_id, None),
    "no credentials": lambda w: (None, None),
    "password without user name": lambda w: (None, w.device_token),
}


@pytest.mark.parametrize("case", BAD_CREDENTIALS)
async def test_bad_credentials_are_refused_with_not_authorized(world: World, tmp_path: Path, case: str) -> None:
    username, password = BAD_CREDENTIALS[case](world)
    hooks = authenticator(world, tmp_path)
    with pytest.raises(AuthenticationRefused) as refused:
        await hooks.authenticate(connect(username, password))
    # 0x87 is what 3.1.1 clients receive as CONNACK return code 5.
    assert refused.value.reason_code == 0x87
    assert world.device_token not in refused.value.message
    assert world.api_token not in refused.value.message
    assert sum(hooks.refused.values()) == 1
    assert not hooks.accepted


async def test_revoked_and_expired_tokens_are_refused(world: World, tmp_path: Path) -> None:
    hooks = authenticator(world, tmp_path)
    async with world.database.session() as session:
        device = await session.get(Device, world.device_id)
        assert device is not None
        record = (await session.scalars(select(DeviceToken))).one()
        await revoke_device_token(session, device, record.id)
        api = await session.get(MqttApiToken, world.api_token_id)
        assert api is not None
        api.expires_at = utcnow() - timedelta(seconds=1)
    with pytest.raises(AuthenticationRefused):
        await hooks.authenticate(connect(world.device_id, world.device_token))
    with pytest.raises(AuthenticationRefused):
        await hooks.authenticate(connect(world.api_token, world.api_token))
    assert hooks.refused == {"revoked": 1, "expired": 1}
    async with world.database.session() as session:
        api = await session.get(MqttApiToken, world.api_token_id)
        assert api is not None
        api.expires_at = utcnow() + timedelta(days=1)
        await revoke_api_token(session, api)
    with pytest.raises(AuthenticationRefused):
        await hooks.authenticate(connect(world.api_token, world.api_token))


async def test_disabled_device_is_refused_and_reenabled_device_accepted(world: World, tmp_path: Path) -> None:
    hooks = authenticator(world, tmp_path)
    async with world.database.session() as session:
        device = await session.get(Device, world.device_id)
        assert device is not None
        await set_device_enabled(session, device, False)
    with pytest.raises(AuthenticationRefused):
        await hooks.authenticate(connect(world.device_id, world.device_token))
    async with world.database.session() as session:
        device = await session.get(Device, world.device_id)
        assert device is not None
        await set_device_enabled(session, device, True)
    await hooks.authenticate(connect(world.device_id, world.device_token))


async def test_a_device_token_opens_only_its_own_device(world: World, tmp_path: Path) -> None:
    async with world.database.session() as session:
        other = await create_device(session, world.org_id, "other")
    with pytest.raises(AuthenticationRefused):
        await authenticator(world, tmp_path).authenticate(connect(other.id, world.device_token))


async def test_anonymous_only_when_allowed_and_in_the_default_organization(world: World, tmp_path: Path) -> None:
    with pytest.raises(AuthenticationRefused):
        await authenticator(world, tmp_path).authenticate(connect(None, None))
    principal = await authenticator(world, tmp_path, allow_anonymous=True).authenticate(connect(None, None))
    assert principal.id == "anonymous"
    assert principal.organization_id == world.default_org_id
    assert principal.mountpoint.startswith("org/")
    assert principal.mountpoint != "org/acme0001/"
    # Renamed, the first-run organization (the oldest) still receives anonymous clients.
    async with world.database.session() as session:
        default = await session.get(Organization, world.default_org_id)
        assert default is not None
        default.name = "renamed"
    renamed = await authenticator(world, tmp_path, allow_anonymous=True).authenticate(connect(None, None))
    assert renamed.organization_id == world.default_org_id


async def test_repeated_failures_from_one_address_are_slowed_down(world: World, tmp_path: Path) -> None:
    hooks = authenticator(world, tmp_path, mqtt_auth_free_failures=2, mqtt_auth_max_delay=0.4)
    for _ in range(2):
        with pytest.raises(AuthenticationRefused):
            await hooks.authenticate(connect(world.device_id, "wrong", peer="10.0.0.9:1234"))
    assert hooks.failure_delay("10.0.0.9") == 0
    started = time.monotonic()
    with pytest.raises(AuthenticationRefused):
        await hooks.authenticate(connect(world.device_id, "wrong", peer="10.0.0.9:1235"))
    assert time.monotonic() - started >= 0.05  # the 0.1 s delay, jittered over its second half
    assert hooks.failure_delay("10.0.0.9") == pytest.approx(0.1)
    for _ in range(5):
        hooks._failures.hit("10.0.0.9")
    assert hooks.failure_delay("10.0.0.9") == pytest.approx(0.4)
    # Another address is not slowed down, and a good login from the slowed address still works.
    assert hooks.failure_delay("10.0.0.10") == 0
    await hooks.authenticate(connect(world.device_id, world.device_token, peer="10.0.0.9:1236"))


async def test_authorizer_applies_the_principal_rules(world: World, tmp_path: Path) -> None:
    hooks = authenticator(world, tmp_path)
    authorizer = TopicAuthorizer()
    device = await hooks.authenticate(connect(world.device_id, world.device_token))
    app = await hooks.authenticate(connect(world.api_token, world.api_token))
    assert await authorizer.authorize(device, Action.PUBLISH, f"devices/{world.device_id}/datastream")
    assert not await authorizer.authorize(device, Action.PUBLISH, "devices/other/datastream")
    assert await authorizer.authorize(device, Action.SUBSCRIBE, f"organizations/{world.org_id}/broadcast")
    assert not await authorizer.authorize(device, Action.SUBSCRIBE, "#")
    assert await authorizer.authorize(app, Action.SUBSCRIBE, "device/+/telemetry/#")
    assert await authorizer.authorize(app, Action.SUBSCRIBE, f"device/{world.device_id}/telemetry/temperature")
    assert not await authorizer.authorize(app, Action.SUBSCRIBE, "devices/+/commands")
    assert not await authorizer.authorize(app, Action.PUBLISH, f"device/{world.device_id}/telemetry/temperature")


async def test_custom_app_permissions(world: World, tmp_path: Path) -> None:
    async with world.database.session() as session:
        issued = await issue_api_token(
            session,
            world.secrets,
            world.org_id,
            name="writer",
            lifetime=timedelta(days=1),
            subscribe=["devices/+/status"],
            publish=["devices/+/commands"],
        )
    principal = await authenticator(world, tmp_path).authenticate(connect(issued.token, issued.token))
    authorizer = TopicAuthorizer()
    assert await authorizer.authorize(principal, Action.PUBLISH, "devices/abc/commands")
    assert not await authorizer.authorize(principal, Action.PUBLISH, "devices/abc/status")
    assert await authorizer.authorize(principal, Action.SUBSCRIBE, "devices/+/status")
    assert not await authorizer.authorize(principal, Action.SUBSCRIBE, "device/+/telemetry/#")


def remembered(auth: DatabaseAuthenticator, info: ConnectInfo) -> Principal | None:
    """The principal ``admit`` answers with at once, or None when it would have to ask the database."""
    admitted = auth.admit(info)
    if isinstance(admitted, Principal):
        return admitted
    if isinstance(admitted, asyncio.Future):
        admitted.cancel()
    else:
        assert inspect.iscoroutine(admitted)
        admitted.close()
    return None


class CountingSecrets(SecretBox):
    """Counts the tokens hashed."""

    hashed = 0

    def hash_token(self, token: str) -> str:
        self.hashed += 1
        return super().hash_token(token)


async def test_a_presented_token_is_hashed_once_per_connect(world: World, tmp_path: Path) -> None:
    secrets = CountingSecrets("s" * 48)
    auth = DatabaseAuthenticator(world.database, secrets, make_settings(tmp_path))
    world.authenticators.append(auth)
    device = connect(world.device_id, world.device_token)
    first = await auth.authenticate(device)  # looked up in the database
    assert secrets.hashed == 1
    assert remembered(auth, device) == first  # from the cache
    assert secrets.hashed == 2
    await auth.authenticate(connect(world.api_token, world.api_token))
    assert secrets.hashed == 3
    assert auth.cache.misses == 2


async def test_remembered_answers_only_for_credentials_accepted_before(world: World, tmp_path: Path) -> None:
    auth = authenticator(world, tmp_path, allow_anonymous=True)
    device = connect(world.device_id, world.device_token)
    app = connect(world.api_token, world.api_token)
    anonymous = connect(None, None)
    assert [remembered(auth, info) for info in (device, app, anonymous)] == [None, None, None]
    accepted = [await auth.authenticate(info) for info in (device, app, anonymous)]
    assert [remembered(auth, info) for info in (device, app, anonymous)] == accepted
    # Never for a different secret, nor for what is not cached (administrators, refusals).
    assert remembered(auth, connect(world.device_id, "mqh_dev_" + "x" * 40)) is None
    assert remembered(auth, connect(world.api_token, world.device_token)) is None
    assert remembered(auth, connect("root@example.com", "password1")) is None
    auth.forget(f"device:{world.device_id}")
    assert remembered(auth, device) is None
    assert remembered(auth, app) == accepted[1]
    await auth.last_used.settle()


async def test_a_credential_in_use_is_refreshed_before_it_expires(world: World, tmp_path: Path) -> None:
    now = [1000.0]
    auth = authenticator(world, tmp_path, mqtt_auth_cache_ttl=10.0)
    auth.cache = CredentialCache(10.0, 100, clock=lambda: now[0])
    device = connect(world.device_id, world.device_token)
    await auth.authenticate(device)
    queries = auth.lookup_queries
    now[0] += 4.0  # before half the TTL: a plain hit
    assert isinstance(auth.admit(device), Principal)
    assert auth.cache.refreshes == 0
    now[0] += 2.0  # past it: the hit still answers at once, and the credential is checked again meanwhile
    assert isinstance(auth.admit(device), Principal)
    assert isinstance(auth.admit(device), Principal)
    await auth.cache.settle()
    assert auth.cache.refreshes == 1  # once per entry
    assert auth.lookup_queries == queries + 1
    now[0] += 9.0  # 15 s after the first lookup, 9 s after the refresh: still remembered (and refreshed again)
    assert isinstance(auth.admit(device), Principal)
    await auth.cache.settle()
    assert auth.cache.refreshes == 2

    # Revoked where this hub is not told (another process): the next refresh finds it and forgets it.
    async with world.database.session() as session:
        record = (await session.scalars(select(DeviceToken))).one()
        record.revoked_at = utcnow()
    now[0] += 6.0
    assert isinstance(auth.admit(device), Principal)  # within its TTL, as the cache promises
    await auth.cache.settle()
    admitted = auth.admit(device)
    assert not isinstance(admitted, Principal)  # no longer remembered: checked, and refused
    with pytest.raises(AuthenticationRefused):
        await admitted
