"""Cached look-ups the ingest path needs: devices, organizations' namespaces, telemetry definitions.

The ingest store runs these inside its batch transaction, asking the database only for
ids it has not seen within ``ttl`` seconds, so a steady stream from known devices costs
no extra queries. Changes made through this hub's API are followed once committed
(:class:`~mqtthub.auth.live.DeviceChanged`, :class:`DefinitionChanged`, see
:mod:`mqtthub.db.changes`) and bite at once; changes made elsewhere (another hub
instance) bite within ``ttl``.

A look-up that read the database before a change committed must not put its stale answer
in the cache after the change was forgotten: each ``forget_*`` moves an epoch, and a
look-up that saw the epoch move while it was reading answers its rows without caching them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mqtthub.db.rows import fetch_all, in_list
from mqtthub.models import Organization, TelemetryDefinition

_DEVICE_COLUMNS = "d.id, d.organization_id, o.short_id, d.enabled"
_DEVICES_FROM = "FROM devices d JOIN organizations o ON o.id = d.organization_id WHERE d.id IN "


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What ingestion needs to know about a device."""

    id: str
    organization_id: str
    short_id: str
    enabled: bool


@dataclass(frozen=True, slots=True)
class DefinitionChanged:
    """A telemetry definition was changed or deleted (recorded on the session that did it)."""

    definition_id: int


@dataclass(frozen=True, slots=True)
class DefinitionInfo:
    """What ingestion needs to know about a telemetry definition."""

    id: int
    device_id: str
    key: str
    unit: str
    min_threshold: float | None
    max_threshold: float | None


class Directory:
    """Time-bounded caches of :class:`DeviceInfo`, :class:`DefinitionInfo` and organization short ids."""

    def __init__(self, *, ttl: float = 30.0, max_entries: int = 100_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._devices: dict[str, tuple[float, DeviceInfo]] = {}
        self._definitions: dict[int, tuple[float, DefinitionInfo]] = {}
        self._orgs: dict[str, tuple[float, str]] = {}
        self._epoch = 0

    def _fresh(self, stamp: float, now: float) -> bool:
        return now - stamp < self.ttl

    def _trim(self) -> None:
        for cache in (self._devices, self._definitions, self._orgs):
            if len(cache) > self.max_entries:
                cache.clear()

    async def devices(self, session: AsyncSession, ids: Iterable[str]) -> dict[str, DeviceInfo]:
        """The known devices among ``ids`` (unknown ids are absent)."""
        now = time.monotonic()
        found: dict[str, DeviceInfo] = {}
        missing: list[str] = []
        for device_id in set(ids):
            cached = self._devices.get(device_id)
            if cached is not None and self._fresh(cached[0], now):
                found[device_id] = cached[1]
            else:
                missing.append(device_id)
        if missing:
            self._trim()
            epoch = self._epoch
            # In one round trip through the driver (see mqtthub.db.rows): a fleet reconnecting after a restart
            # has every device's first status row ask for it.
            marks, parameters = in_list(missing)
            rows = await fetch_all(await session.connection(), _DEVICE_COLUMNS, _DEVICES_FROM + marks, parameters)
            for device_id, organization_id, short_id, enabled in rows:
                info = DeviceInfo(device_id, organization_id, short_id, bool(enabled))
                if epoch == self._epoch:
                    self._devices[device_id] = (now, info)
                    self._orgs[short_id] = (now, organization_id)
                found[device_id] = info
        return found

    async def definitions(self, session: AsyncSession, ids: Iterable[int]) -> dict[int, DefinitionInfo]:
        """The existing telemetry definitions among ``ids``."""
        now = time.monotonic()
        found: dict[int, DefinitionInfo] = {}
        missing: list[int] = []
        for definition_id in set(ids):
            cached = self._definitions.get(definition_id)
            if cached is not None and self._fresh(cached[0], now):
                found[definition_id] = cached[1]
            else:
                missing.append(definition_id)
        if missing:
            self._trim()
            epoch = self._epoch
            rows = await session.scalars(select(TelemetryDefinition).where(TelemetryDefinition.id.in_(missing)))
            for row in rows:
                info = DefinitionInfo(row.id, row.device_id, row.key, row.unit, row.min_threshold, row.max_threshold)
                if epoch == self._epoch:
                    self._definitions[row.id] = (now, info)
                found[row.id] = info
        return found

    async def organization_by_short_id(self, session: AsyncSession, short_id: str) -> str | None:
        """The id of the organization whose namespace is ``org/{short_id}/``."""
        now = time.monotonic()
        cached = self._orgs.get(short_id)
        if cached is not None and self._fresh(cached[0], now):
            return cached[1]
        organization_id = await session.scalar(select(Organization.id).where(Organization.short_id == short_id))
        if organization_id is not None:
            self._orgs[short_id] = (now, organization_id)
        return organization_id

    def know_device(self, info: DeviceInfo) -> None:
        """Remember a device the broker has just admitted, unless it is known already.

        The device's principal says what a look-up would (its organization; enabled, since it was let in), and
        is as fresh as the broker's knowledge: a change of the device afterwards forgets it here as it does there.
        A fleet reconnecting after a restart then has its status rows written without looking each device up.
        """
        now = time.monotonic()
        cached = self._devices.get(info.id)
        if cached is None or not self._fresh(cached[0], now):
            self._trim()
            self._devices[info.id] = (now, info)

    def forget_device(self, device_id: str) -> None:
        """Drop a cached device (it was changed or deleted)."""
        self._epoch += 1
        self._devices.pop(device_id, None)

    def forget_definition(self, definition_id: int) -> None:
        """Drop a cached definition (it was changed or deleted)."""
        self._epoch += 1
        self._definitions.pop(definition_id, None)
