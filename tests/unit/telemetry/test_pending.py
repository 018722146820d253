"""Devices noted for their pending commands: only a device's own command topic counts, and the wait is bounded."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from mqtthub.broker.hooks import BrokerMessage, Principal
from mqtthub.telemetry.pending import CommandSubscriptions, track_restored

DEVICE = Principal(id="device:d1", kind="device", organization_id="o1", mountpoint="org/abc123/")
APP = Principal(id="token:t1", kind="token", organization_id="o1", mountpoint="org/abc123/")


async def test_a_device_covering_its_command_topic_is_noted_in_order() -> None:
    noted = CommandSubscriptions(lambda: 1_700_000_000.0)
    noted.subscribed(APP, "org/abc123/devices/+/commands")  # not a device
    noted.subscribed(DEVICE, "org/abc123/devices/d1/status")  # not its command topic
    noted.subscribed(DEVICE, "org/abc123/devices/d1/#")
    noted.subscribed(DEVICE, "org/abc123/devices/d1/commands")
    taken = await asyncio.wait_for(noted.take(), 5)
    assert [(item.device_id, item.topic) for item in taken] == [
        ("d1", "org/abc123/devices/d1/commands"),
        ("d1", "org/abc123/devices/d1/commands"),
    ]
    assert taken[0].at.timestamp() == 1_700_000_000.0

    waiting = asyncio.create_task(noted.take())
    await asyncio.sleep(0)
    assert not waiting.done()  # nothing noted: it waits
    noted.subscribed(DEVICE, "org/abc123/devices/d1/commands")
    assert len(await asyncio.wait_for(waiting, 5)) == 1


async def test_past_its_capacity_a_device_is_dropped_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    noted = CommandSubscriptions(lambda: 0.0, capacity=2)
    with caplog.at_level(logging.WARNING, logger="mqtthub.telemetry.pending"):
        for _ in range(3):
            noted.subscribed(DEVICE, "org/abc123/devices/d1/commands")
    assert noted.dropped == 1
    assert "device d1 is not sent them now" in caplog.text
    assert len(await noted.take()) == 2


def test_a_restored_command_gets_its_delivery_tracking_back() -> None:
    delivered: list[tuple[str, str, str]] = []
    command = BrokerMessage("org/abc123/devices/d1/commands", json.dumps({"commandId": "c1"}).encode())
    other = BrokerMessage("org/abc123/devices/d1/commands", b"not json")
    for message in (command, other):
        track_restored(message, lambda *ids: delivered.append(ids))
    assert other.on_delivered is None
    assert command.on_delivered is not None
    command.on_delivered("client-1")
    assert delivered == [("c1", "d1", "client-1")]
