"""The ingest directory learns devices from the broker's admissions, and forgets them on a change."""

from __future__ import annotations

from typing import cast

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from mqtthub.broker.hooks import Principal
from mqtthub.telemetry.directory import DeviceInfo, Directory
from mqtthub.telemetry.ingest import Ingest
from mqtthub.telemetry.sink import DeviceObserver
from mqtthub.telemetry.writer import IngestWriter
from mqtthub.tenancy import namespace_prefix, short_id_of

NO_DATABASE = cast(AsyncSession, None)
"""A directory asked for a device it does not know would need the database: these tests give it none."""


async def test_a_known_device_needs_no_lookup_until_it_is_forgotten() -> None:
    directory = Directory()
    info = DeviceInfo("d1", "org-1", "acme0001", enabled=True)
    directory.know_device(info)
    assert await directory.devices(NO_DATABASE, ["d1"]) == {"d1": info}
    directory.know_device(DeviceInfo("d1", "org-2", "other001", enabled=True))  # known already: kept
    assert (await directory.devices(NO_DATABASE, ["d1"]))["d1"] is info
    directory.forget_device("d1")
    with pytest.raises(AttributeError):  # looked up again: through the (missing) database
        await directory.devices(NO_DATABASE, ["d1"])


class _Writer:
    """Takes what the observer records (the one seam mocked here)."""

    def __init__(self) -> None:
        self.items: list[Ingest] = []

    def submit(self, item: Ingest, *, awaited: bool = True) -> None:
        self.items.append(item)


async def test_the_observer_makes_an_admitted_device_known() -> None:
    directory = Directory()
    writer = _Writer()
    observer = DeviceObserver(cast(IngestWriter[Ingest], writer), clock=lambda: 1.0, directory=directory)
    device = Principal(
        id="device:d1",
        kind="device",
        organization_id="org-1",
        mountpoint=namespace_prefix("acme0001"),
        attributes={"device_id": "d1"},
    )
    observer.client_connected("client", device)
    observer.client_connected("app", Principal(id="token:t1", kind="app", organization_id="org-1"))
    assert await directory.devices(NO_DATABASE, ["d1"]) == {"d1": DeviceInfo("d1", "org-1", "acme0001", True)}
    assert [item.device_id for item in writer.items] == ["d1"]


def test_short_ids_are_read_back_from_mountpoints() -> None:
    assert short_id_of(namespace_prefix("acme0001")) == "acme0001"
    for other in ("", "org/", "org//", "org/a/b/", "orgs/a/", "org/a"):
        assert short_id_of(other) is None, other
