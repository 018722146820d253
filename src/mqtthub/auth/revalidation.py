"""Disconnects MQTT clients whose credential stopped being valid behind the API's back.

The API disconnects the clients concerned as soon as it revokes a token, disables a device
or revokes a certificate. Changes made straight in the database (the CLI, another hub
process) are caught by :class:`CredentialRevalidator`, and disconnected (reason code 0x87,
Not authorized), every client whose

- API token is revoked, expired or deleted;
- device is disabled or deleted, or whose device token is revoked, expired or deleted (a
  device may hold several tokens: only the clients that used the bad one go);
- certificate is revoked, expired or deleted, or names a disabled device or an inactive user;
- platform administrator is deactivated, deleted or no longer an administrator.

Anonymous clients have no credential to check. When the identity itself is gone (not just one
of a device's tokens) its sessions are discarded too, persistent ones included.

The work is incremental, so that it does not grow with the number of connected clients: every
``mqtt_revalidate_interval`` seconds one query per kind asks which tokens and certificates were
revoked and which devices were disabled since the previous round (with some overlap, for
transactions that committed late), and only the clients holding one of those are looked at
and checked in full. Every ``full_every`` rounds all connected clients are checked, which also
catches what leaves no timestamp: deleted rows, deactivated users, changed roles.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from mqtthub.broker.handle import BrokerHandle
from mqtthub.broker.hooks import Principal
from mqtthub.db import Database
from mqtthub.db.base import utcnow
from mqtthub.models import ClientCertificate, Device, DeviceToken, MqttApiToken, User, UserRole
from mqtthub.mqtt.reason_codes import ReasonCode

logger = logging.getLogger(__name__)

# Ids per IN (...) clause: well under every supported database's bound-parameter limit.
_CHUNK = 500


@dataclass
class _Connected:
    """The credentials in use by the connected clients, by kind."""

    api_tokens: set[str] = field(default_factory=set)
    devices: set[str] = field(default_factory=set)
    device_tokens: set[str] = field(default_factory=set)
    certificates: set[str] = field(default_factory=set)
    users: set[str] = field(default_factory=set)


@dataclass
class _Valid:
    """The subset of :class:`_Connected` the database still accepts."""

    api_tokens: set[str] = field(default_factory=set)
    devices: set[str] = field(default_factory=set)
    device_tokens: set[str] = field(default_factory=set)
    certificates: set[str] = field(default_factory=set)
    users: set[str] = field(default_factory=set)
    admins: set[str] = field(default_factory=set)


class CredentialRevalidator:
    """Periodically disconnects connected MQTT clients whose credential is no longer valid.

    The owners of offline sessions (persistent sessions waiting for their client, those restored
    from the broker state file included) are checked on the first round and every
    ``offline_every`` rounds: the sessions of an identity that is gone (revoked token, disabled or
    deleted device, revoked certificate, inactive user), say while the hub was stopped, are discarded.

    Args:
        database: The identity database.
        broker: The broker whose clients are checked.
        interval: Seconds between two checks.
        offline_every: Rounds between two checks of the offline sessions' owners.
        full_every: Rounds between two checks of every connected client (the first round is one).
    """

    def __init__(
        self,
        database: Database,
        broker: BrokerHandle,
        interval: float,
        *,
        offline_every: int = 60,
        full_every: int = 30,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"the revalidation interval must be positive, not {interval}")
        self._database = database
        self._broker = broker
        self._interval = interval
        self._offline_every = offline_every
        self._full_every = max(1, full_every)
        self._overlap = timedelta(seconds=max(5.0, 2 * interval))
        self._since: datetime | None = None
        self._rounds = 0
        self.disconnected = 0
        """Clients disconnected so far."""
        self.sessions_discarded = 0
        """Offline sessions' owners found gone so far (each with all its sessions discarded)."""

    async def run(self) -> None:
        """Check every ``interval`` seconds until cancelled; a failed check is retried (logged once per outage)."""
        failing = False
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.check()
            except Exception:
                if not failing:
                    logger.warning(
                        "MQTT credential revalidation failed; retrying every %g s", self._interval, exc_info=True
                    )
                failing = True
            else:
                if failing:
                    logger.info("MQTT credential revalidation works again")
                failing = False

    async def check(self) -> int:
        """Check the connected clients once (and now and then offline sessions); return how many were disconnected."""
        self._rounds += 1
        if self._rounds % self._offline_every == 1 or self._offline_every == 1:
            await self.check_offline()
        started = utcnow()
        if self._since is None or self._rounds % self._full_every == 1 or self._full_every == 1:
            clients = self._broker.clients()
        else:
            clients = await self._touched(self._since - self._overlap)
        self._since = started
        return await self._revalidate(clients)

    async def _touched(self, since: datetime) -> list[tuple[str, Principal]]:
        """The connected clients holding a credential revoked or disabled since ``since``."""
        async with self._database.session() as session:
            revoked_device_tokens = (
                await session.execute(
                    select(DeviceToken.id, DeviceToken.device_id).where(DeviceToken.revoked_at >= since)
                )
            ).all()
            changed = _Connected(
                api_tokens=set(await session.scalars(select(MqttApiToken.id).where(MqttApiToken.revoked_at >= since))),
                device_tokens={token_id for token_id, _ in revoked_device_tokens},
                devices=set(
                    await session.scalars(
                        select(Device.id).where(Device.updated_at >= since, Device.enabled.is_(False))
                    )
                ),
                certificates=set(
                    await session.scalars(select(ClientCertificate.serial).where(ClientCertificate.revoked_at >= since))
                ),
            )
        if not any(vars(changed).values()):
            return []
        # Forgotten even when no client of this hub's broker holds them: with an external broker another hub may
        # have made the change, and this one must not let the credential in again from what it remembers.
        for principal_id in (
            *(f"token:{token_id}" for token_id in changed.api_tokens),
            *(f"device:{device_id}" for device_id in changed.devices),
            *(f"device:{device_id}" for _, device_id in revoked_device_tokens),
        ):
            self._broker.invalidate(principal_id)
        return [(client_id, principal) for client_id, principal in self._broker.clients() if _holds(principal, changed)]

    async def _revalidate(self, clients: list[tuple[str, Principal]]) -> int:
        connected = _Connected()
        for _client_id, principal in clients:
            _collect(principal, connected)
        if not any(vars(connected).values()):
            return 0
        async with self._database.session() as session:
            valid = await _load_valid(session, connected)
        # Only connections still holding the very principal checked: one that took over the client id
        # meanwhile (reconnected with another credential) is checked next time.
        invalid = {id(principal) for _client_id, principal in clients if not _still_valid(principal, valid)}
        kicked = 0
        for client_id, principal in self._broker.clients():
            if id(principal) not in invalid:
                continue
            # Its credential may be remembered by the authenticator: a reconnect must ask the database.
            self._broker.invalidate(principal.id)
            count = self._broker.kick(
                client_id=client_id, principal_id=principal.id, reason_code=ReasonCode.NOT_AUTHORIZED
            )
            if not _identity_valid(principal, valid):
                self._broker.discard_sessions(principal.id, ReasonCode.NOT_AUTHORIZED)
            if count:
                logger.info(
                    "disconnected MQTT client %r: the credential of %s is no longer valid", client_id, principal.id
                )
            kicked += count
        self.disconnected += kicked
        return kicked

    async def check_offline(self) -> int:
        """Discard the sessions of offline owners whose identity is gone; return how many owners."""
        owners = {principal.id: principal for principal in self._broker.offline_sessions()}
        held = _Connected()
        for principal in owners.values():
            _collect(principal, held)
        if not any(vars(held).values()):
            return 0
        async with self._database.session() as session:
            valid = await _load_valid(session, held)
        gone = [principal for principal in owners.values() if not _identity_valid(principal, valid)]
        for principal in gone:
            self._broker.discard_sessions(principal.id, ReasonCode.NOT_AUTHORIZED)
            logger.info("discarded the offline sessions of %s: its identity is no longer valid", principal.id)
        self.sessions_discarded += len(gone)
        return len(gone)


def _collect(principal: Principal, connected: _Connected) -> None:
    attributes = principal.attributes
    if principal.kind == "app":
        connected.api_tokens.add(attributes["token_id"])
    elif principal.kind == "device":
        connected.devices.add(attributes["device_id"])
        # An external broker's client is known by its device id alone: which token it used, only the broker knew.
        if "device_token_id" in attributes:
            connected.device_tokens.add(attributes["device_token_id"])
    elif principal.kind == "certificate":
        connected.certificates.add(attributes["certificate_serial"])
        if "device_id" in attributes:
            connected.devices.add(attributes["device_id"])
        if "user_id" in attributes:
            connected.users.add(attributes["user_id"])
    elif principal.kind == "admin":
        connected.users.add(principal.id.removeprefix("user:"))


def _holds(principal: Principal, changed: _Connected) -> bool:
    """Whether the principal uses one of the credentials in ``changed``."""
    held = _Connected()
    _collect(principal, held)
    return any(mine & theirs for mine, theirs in zip(vars(held).values(), vars(changed).values(), strict=True))


def _still_valid(principal: Principal, valid: _Valid) -> bool:
    attributes = principal.attributes
    if principal.kind == "app":
        return attributes["token_id"] in valid.api_tokens
    if principal.kind == "device":
        token_id = attributes.get("device_token_id")
        return attributes["device_id"] in valid.devices and (token_id is None or token_id in valid.device_tokens)
    if principal.kind == "certificate":
        if attributes["certificate_serial"] not in valid.certificates:
            return False
        if "device_id" in attributes:
            return attributes["device_id"] in valid.devices
        return attributes.get("user_id") in valid.users
    if principal.kind == "admin":
        return principal.id.removeprefix("user:") in valid.admins
    return True


def _identity_valid(principal: Principal, valid: _Valid) -> bool:
    # A device whose token alone went bad keeps its sessions: they belong to the device.
    if principal.kind == "device":
        return principal.attributes["device_id"] in valid.devices
    return _still_valid(principal, valid)


async def _load_valid(session: AsyncSession, connected: _Connected) -> _Valid:
    now = utcnow()
    valid = _Valid()
    valid.api_tokens = await _ids(
        session,
        MqttApiToken.id,
        connected.api_tokens,
        MqttApiToken.revoked_at.is_(None),
        MqttApiToken.expires_at > now,
    )
    valid.devices = await _ids(session, Device.id, connected.devices, Device.enabled.is_(True))
    valid.device_tokens = await _ids(
        session,
        DeviceToken.id,
        connected.device_tokens,
        DeviceToken.revoked_at.is_(None),
        or_(DeviceToken.expires_at.is_(None), DeviceToken.expires_at > now),
    )
    valid.certificates = await _ids(
        session,
        ClientCertificate.serial,
        connected.certificates,
        ClientCertificate.revoked_at.is_(None),
        ClientCertificate.not_after > now,
    )
    for user_id, is_active, role in await _rows(session, connected.users):
        if is_active:
            valid.users.add(user_id)
            if role is UserRole.PLATFORM_ADMIN:
                valid.admins.add(user_id)
    return valid


async def _ids(
    session: AsyncSession, column: Any, wanted: Collection[str], *conditions: ColumnElement[bool]
) -> set[str]:
    """Those of ``wanted`` whose row exists and meets ``conditions``."""
    found: set[str] = set()
    for chunk in _chunks(wanted):
        found.update(await session.scalars(select(column).where(column.in_(chunk), *conditions)))
    return found


async def _rows(session: AsyncSession, user_ids: Collection[str]) -> list[tuple[str, bool, UserRole]]:
    rows: list[tuple[str, bool, UserRole]] = []
    for chunk in _chunks(user_ids):
        result = await session.execute(select(User.id, User.is_active, User.role).where(User.id.in_(chunk)))
        rows.extend(row._tuple() for row in result)
    return rows


def _chunks(values: Collection[str]) -> Iterator[list[str]]:
    ordered = sorted(values)
    for start in range(0, len(ordered), _CHUNK):
        yield ordered[start : start + _CHUNK]
