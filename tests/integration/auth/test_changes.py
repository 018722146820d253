"""Committed changes reach their subscribers after the commit, never on rollback (real SQLite and PostgreSQL)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pytest

from mqtthub.db import Database
from mqtthub.db.changes import ChangeBus, record
from mqtthub.db.migrate import upgrade
from mqtthub.models import Organization
from tests.integration.auth.conftest import RunningHub


@dataclass(frozen=True)
class Renamed:
    name: str


@dataclass(frozen=True)
class Other:
    name: str


async def test_events_follow_the_commit_and_vanish_on_rollback(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    await upgrade(database_url)
    bus = ChangeBus()
    seen: list[object] = []
    bus.subscribe(Renamed, seen.append)
    bus.subscribe(Other, lambda change: seen.append(("other", change.name)))
    async with Database(database_url, changes=bus) as database:
        async with database.session() as session:
            session.add(Organization(name="changes", short_id="chg00001"))
            await session.flush()
            record(session, Renamed("a"))
            record(session, Other("b"))
            record(session, Renamed("c"))
            assert seen == []  # nothing before the commit
        assert seen == [Renamed("a"), ("other", "b"), Renamed("c")]

        seen.clear()

        async def fail_after_recording() -> None:
            async with database.session() as session:
                record(session, Renamed("rolled back"))
                raise RuntimeError("the request failed")

        with pytest.raises(RuntimeError):
            await fail_after_recording()
        async with database.session() as session:
            record(session, Renamed("next"))
        assert seen == [Renamed("next")]

        def broken(change: Renamed) -> None:
            raise ValueError(change.name)

        bus.subscribe(Renamed, broken)
        bus.subscribe(Renamed, lambda change: seen.append(("after the broken one", change.name)))
        seen.clear()
        with caplog.at_level(logging.ERROR, logger="mqtthub.db.changes"):
            async with database.session() as session:
                record(session, Renamed("z"))
        assert seen == [Renamed("z"), ("after the broken one", "z")]
        assert "handling Renamed failed" in caplog.text

    async with Database(database_url) as without_bus, without_bus.session() as session:
        record(session, Renamed("nobody listens"))  # a process without a hub (the CLI) drops its events
    assert ("after the broken one", "nobody listens") not in seen


async def test_a_disabled_device_is_seen_at_once_by_telemetry(running_hub: RunningHub) -> None:
    """Telemetry caches devices; the device change reaches it after the commit instead of after its cache time."""
    admin = running_hub.admin
    assert running_hub.hub.first_run is not None
    org_id = running_hub.hub.first_run.organization_id
    device = (await admin.post(f"/api/v1/organizations/{org_id}/devices", json={"name": "cached"})).json()
    directory = running_hub.hub.telemetry.directory
    async with running_hub.hub.database.session() as session:
        assert (await directory.devices(session, [device["id"]]))[device["id"]].enabled is True
    patched = await admin.patch(f"/api/v1/organizations/{org_id}/devices/{device['id']}", json={"enabled": False})
    assert patched.status_code == 200, patched.text
    async with running_hub.hub.database.session() as session:
        assert (await directory.devices(session, [device["id"]]))[device["id"]].enabled is False
    deleted = await admin.delete(f"/api/v1/organizations/{org_id}/devices/{device['id']}")
    assert deleted.status_code == 204
    async with running_hub.hub.database.session() as session:
        assert await directory.devices(session, [device["id"]]) == {}
