"""The principal behind a user name alone, for the topic checks of external brokers.

A broker asks about a topic with the client's user name and client id, never its password, and any hub of
several may answer. So the principal is found from the name, the way the embedded broker would have built it
at CONNECT: a device id names an enabled device (its organization's namespace, its own topics), an e-mail an
active platform administrator (the global namespace). The topic rules come from :mod:`mqtthub.auth.acl`, the
namespace from :mod:`mqtthub.tenancy`: nothing here decides a topic.

Answers are cached like accepted credentials (:class:`~mqtthub.auth.credential_cache.CredentialCache`, the
embedded broker's TTL) and forgotten when the hub learns that a principal's access ended or a device changed.
Unknown names are not cached: a device created a moment ago works at once. Names in use are refreshed ahead of
their expiry, in the background.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from mqtthub.auth.acl import ADMIN_RULES, device_rules
from mqtthub.auth.batching import BatchLookup
from mqtthub.auth.credential_cache import CredentialCache
from mqtthub.broker.hooks import Principal
from mqtthub.db import Database
from mqtthub.models import Device, Organization, User, UserRole
from mqtthub.tenancy import namespace_prefix

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class PrincipalDirectory:
    """Devices and platform administrators by user name, cached.

    Args:
        database: The identity database.
        cache: Where answers are kept (its TTL bounds what a hub cannot be told about).
    """

    def __init__(self, database: Database, cache: CredentialCache) -> None:
        self._database = database
        self.cache = cache
        self._devices = BatchLookup(database.autocommit, _fetch_devices, name="device by id")

    async def resolve(self, username: str) -> Principal | None:
        """The principal of a device id or an administrator's e-mail; None for anything else."""
        email = username.strip().lower() if "@" in username else None
        key = ("name", email or username)
        entry = self.cache.get(key)
        if entry is not None:
            if self.cache.refresh_due(entry):
                self.cache.refresh(self._refresh(key, entry.principal.id))
            return entry.principal
        if email is None and not _UUID.match(username):
            return None
        return await self._look_up(key)

    async def _look_up(self, key: tuple[str, str]) -> Principal | None:
        name = key[1]
        epoch = self.cache.epoch
        principal = await (self._administrator(name) if "@" in name else self._device(name))
        if principal is not None:
            self.cache.put(key, principal, epoch=epoch)
        return principal

    async def _refresh(self, key: tuple[str, str], principal_id: str) -> None:
        if await self._look_up(key) is None:  # the device was disabled or deleted, the administrator demoted
            self.cache.forget(principal_id)

    def forget(self, *principal_ids: str) -> None:
        """Forget principals (their access ended, or their device changed)."""
        for principal_id in principal_ids:
            self.cache.forget(principal_id)

    async def settle(self) -> None:
        """Wait for the refreshes under way and give back the connection held for lookups (database closing)."""
        await self.cache.settle()
        await self._devices.settle()

    async def _device(self, device_id: str) -> Principal | None:
        # Batched like the broker's token lookups: names checked together share one query and one connection.
        row = await self._devices.get(device_id)
        if row is None or not row[0]:
            return None
        _, organization_id, short_id = row
        return Principal(
            id=f"device:{device_id}",
            kind="device",
            organization_id=organization_id,
            mountpoint=namespace_prefix(short_id),
            attributes={"device_id": device_id, **device_rules(device_id, organization_id).to_attributes()},
        )

    async def _administrator(self, email: str) -> Principal | None:
        async with self._database.session() as session:
            user = await session.scalar(select(User).where(User.email == email))
        if user is None or not user.is_active or user.role is not UserRole.PLATFORM_ADMIN:
            return None
        return Principal(id=f"user:{user.id}", kind="admin", attributes=ADMIN_RULES.to_attributes())


async def _fetch_devices(connection: AsyncConnection, device_ids: list[str]) -> dict[str, tuple[Any, ...]]:
    statement = (
        select(Device.id, Device.enabled, Organization.id, Organization.short_id)
        .join(Organization, Organization.id == Device.organization_id)
        .where(Device.id.in_(device_ids))
    )
    return {row[0]: tuple(row[1:]) for row in await connection.execute(statement)}
