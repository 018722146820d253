"""Committed changes reach their subscribers after the commit, never on rollback (real SQLite and PostgreSQL)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx
import pytest

from mqtthub.db import Database
from mqtthub.db.changes import ChangeBus, record
from mqtthub.db.migrate import upgrade
from mqtthub.models import Organization
from tests.support.served import LocalHub


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


async def test_a_disabled_device_is_seen_at_once_by_telemetry(running_hub: LocalHub) -> None:
    """Telemetry caches devices; the device change reaches it after the commit instead of after its cache time."""
    admin = running_hub.client
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


async def test_device_and_definition_changes_bite_on_the_next_http_message(running_hub: LocalHub) -> None:
    """Telemetry's caches follow committed changes: no message is judged by a device or threshold already changed."""
    admin = running_hub.client
    assert running_hub.hub.first_run is not None
    org_id = running_hub.hub.first_run.organization_id
    device = (await admin.post(f"/api/v1/organizations/{org_id}/devices", json={"name": "thermo"})).json()
    base = f"/api/v1/organizations/{org_id}/devices/{device['id']}"
    token = (await admin.post(f"{base}/tokens", json={"name": "t"})).json()["token"]
    definitions = f"/api/v1/devices/{device['id']}/telemetry-definitions"
    created = await admin.post(
        definitions, json={"key": "temperature", "unit": "C", "minThreshold": 20, "maxThreshold": 30}
    )
    definition_id = created.json()["data"]["id"]

    async def send(value: float) -> int:
        async with httpx.AsyncClient(base_url=running_hub.http_url, timeout=30) as device_client:
            response = await device_client.post(
                f"/api/v1/devices/{device['id']}/datastream",
                json={"value": value, "telemetryDataId": definition_id},
                headers={"Authorization": f"Bearer {token}"},
            )
        return response.status_code

    async def alerts() -> int:
        return len((await admin.get(f"/api/v1/devices/{device['id']}/alerts")).json()["data"])

    assert await send(25) == 201  # within 20..30; the device and the definition are cached now
    assert await alerts() == 0
    patched = await admin.patch(f"{definitions}/{definition_id}", json={"maxThreshold": 24})
    assert patched.status_code == 200, patched.text
    assert await send(25) == 201
    assert await alerts() == 1  # judged by the new threshold at once
    disabled = await admin.patch(base, json={"enabled": False})
    assert disabled.status_code == 200, disabled.text
    assert await send(25) == 403
