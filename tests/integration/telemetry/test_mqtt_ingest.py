"""Device messages over MQTT into the database, acknowledged after commit, with live events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from mqtthub.db.base import new_id
from mqtthub.models import Device, DeviceStatus, RejectedMessage, TelemetryAlert, TelemetryValue
from mqtthub.mqtt.packets import PROTOCOL_V311, Puback, Publish
from mqtthub.telemetry import TelemetryService
from mqtthub.telemetry.ingest import Ingest, IngestKind, Source
from tests.integration.broker.support import RawClient
from tests.integration.telemetry.conftest import Stack
from tests.integration.telemetry.support import PahoDevice

PAYLOAD_FORMAT_INVALID = 0x99


async def _rows(stack: Stack, model: Any) -> list[Any]:
    async with stack.database.session() as session:
        return list(await session.scalars(select(model).execution_options(populate_existing=True)))


async def _eventually(check: Callable[[], Any], timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


async def test_datastream_is_committed_before_the_puback(stack: Stack) -> None:
    mine = stack.bus.subscribe(stack.a.organization_id, ["devices/+/datastream"])
    theirs = stack.bus.subscribe(stack.b.organization_id, ["#"])
    device = await asyncio.to_thread(PahoDevice(stack.port, stack.a).connect)
    try:
        message = {"value": "25.6", "telemetryDataId": stack.a.definition_id, "token": stack.a.token, "urgent": False}
        topic = f"devices/{stack.a.device_id}/datastream"
        assert await asyncio.to_thread(device.publish, topic, message) == 0
        # No waiting: the PUBACK came after the commit, so the row is already there.
        rows = await _rows(stack, TelemetryValue)
        assert [(r.device_id, r.sensor, r.value, r.raw, r.source) for r in rows] == [
            (stack.a.device_id, "temperature", 25.6, "25.6", "mqtt")
        ]
        event = await asyncio.wait_for(mine.get(), 10)
        assert event.type == "datastream"
        assert event.topic == topic
        assert event.data["value"] == 25.6
        assert event.data["telemetryDataId"] == stack.a.definition_id
        assert theirs.qsize() == 0
    finally:
        await asyncio.to_thread(device.close)


async def test_invalid_payloads_are_rejected_logged_and_answered_0x99(stack: Stack) -> None:
    device = await asyncio.to_thread(PahoDevice(stack.port, stack.a).connect)
    topic = f"devices/{stack.a.device_id}/datastream"
    bad: list[tuple[Any, str]] = [
        (b"not json", "payload"),
        ({"telemetryDataId": stack.a.definition_id}, "value"),
        ({"value": 1, "telemetryDataId": "x"}, "telemetryDataId"),
        ({"value": 1, "telemetryDataId": stack.b.definition_id}, "telemetryDataId"),
        ({"value": 1, "telemetryDataId": 999_999}, "telemetryDataId"),
    ]
    try:
        for payload, _ in bad:
            assert await asyncio.to_thread(device.publish, topic, payload) == PAYLOAD_FORMAT_INVALID
        status_topic = f"devices/{stack.a.device_id}/status"
        assert await asyncio.to_thread(device.publish, status_topic, {"metadata": {}}) == PAYLOAD_FORMAT_INVALID
        good = {"value": 21, "telemetryDataId": stack.a.definition_id}
        assert await asyncio.to_thread(device.publish, topic, good) == 0
    finally:
        await asyncio.to_thread(device.close)
    rejected = await _rows(stack, RejectedMessage)
    assert sorted(r.field for r in rejected) == sorted([field for _, field in bad] + ["status"])
    assert all(r.organization_id == stack.a.organization_id and r.reason for r in rejected)
    assert {r.payload for r in rejected if r.field == "payload"} == {"not json"}
    assert [r.value for r in await _rows(stack, TelemetryValue)] == [21.0]
    assert stack.telemetry.stats()["rejected"] == len(bad) + 1


async def test_mqtt_311_devices_get_a_plain_puback_but_the_rejection_is_logged(stack: Stack) -> None:
    device = await asyncio.to_thread(PahoDevice(stack.port, stack.a, v5=False).connect)
    try:
        code = await asyncio.to_thread(device.publish, f"devices/{stack.a.device_id}/datastream", b"{")
    finally:
        await asyncio.to_thread(device.close)
    assert code == 0
    assert [r.field for r in await _rows(stack, RejectedMessage)] == ["payload"]


async def test_thresholds_and_urgent_raise_alerts(stack: Stack) -> None:
    alerts = stack.bus.subscribe(stack.a.organization_id, ["devices/+/alerts"])
    device = await asyncio.to_thread(PahoDevice(stack.port, stack.a).connect)
    topic = f"devices/{stack.a.device_id}/datastream"
    data_id = stack.a.definition_id
    try:
        for payload in (
            {"value": 25, "telemetryDataId": data_id},
            {"value": 35, "telemetryDataId": data_id},
            {"value": "12.5", "telemetryDataId": data_id},
            {"value": 25, "telemetryDataId": data_id, "urgent": True},
            {"value": 35, "telemetryDataId": data_id, "thresholds": {"max": 40}},
            {"value": 45, "telemetryDataId": data_id, "thresholds": {"min": 0, "max": 40}},
        ):
            assert await asyncio.to_thread(device.publish, topic, payload) == 0
    finally:
        await asyncio.to_thread(device.close)
    rows = sorted(await _rows(stack, TelemetryAlert), key=lambda r: r.created_at)
    assert sorted((r.kind, r.value) for r in rows) == [
        ("above_max", 35.0),
        ("above_max", 45.0),
        ("below_min", 12.5),
        ("urgent", 25.0),
    ]
    high = next(r for r in rows if r.value == 45.0)
    assert (high.min_threshold, high.max_threshold) == (0.0, 40.0)
    kinds = sorted([(await asyncio.wait_for(alerts.get(), 10)).data["kind"] for _ in range(4)])
    assert kinds == ["above_max", "above_max", "below_min", "urgent"]
    assert len(await _rows(stack, TelemetryValue)) == 6


async def test_status_follows_connections_and_status_messages(stack: Stack) -> None:
    events = stack.bus.subscribe(stack.a.organization_id, ["devices/+/status"])
    device = await asyncio.to_thread(PahoDevice(stack.port, stack.a).connect)

    async def status() -> DeviceStatus | None:
        rows = await _rows(stack, DeviceStatus)
        return rows[0] if rows else None

    await _eventually(lambda: _is(status(), lambda s: s is not None and s.online))
    report = {"status": "online", "timestamp": "2023-12-01T10:30:00Z", "metadata": {"battery": 85, "signal": -45}}
    assert await asyncio.to_thread(device.publish, f"devices/{stack.a.device_id}/status", report) == 0
    row = await status()
    assert row is not None
    assert (row.status, row.online, row.battery, row.signal) == ("online", True, 85.0, -45.0)
    assert row.last_seen is not None
    assert stack.telemetry.observer.online(stack.a.device_id)
    await asyncio.to_thread(device.close)
    await _eventually(lambda: _is(status(), lambda s: s is not None and not s.online))
    row = await status()
    assert row is not None
    assert (row.status, row.battery) == ("offline", 85.0)
    assert row.disconnected_at is not None
    seen = []
    while events.qsize():
        seen.append((await events.get()).data["status"])
    assert seen[0] == "online"
    assert seen[-1] == "offline"


async def test_status_is_stored_with_nobody_listening(stack: Stack) -> None:
    # Without live listeners the rows are written but not read back to describe them: the row must still follow.
    assert not stack.bus.has_listeners(stack.a.organization_id)
    device = await asyncio.to_thread(PahoDevice(stack.port, stack.a).connect)

    async def status() -> DeviceStatus | None:
        rows = await _rows(stack, DeviceStatus)
        return rows[0] if rows else None

    await _eventually(lambda: _is(status(), lambda s: s is not None and s.online and s.connected_at is not None))
    await asyncio.to_thread(device.close)
    await _eventually(lambda: _is(status(), lambda s: s is not None and not s.online))
    row = await status()
    assert row is not None
    assert (row.status, row.online) == ("offline", False)
    assert row.disconnected_at is not None


async def test_status_moments_are_stored_exactly_and_compare_in_queries(stack: Stack) -> None:
    # Status rows are written past SQLAlchemy's parameter processing: what it reads back, and how its bound
    # datetimes compare in SQL, must be as if it had written them (a whole second, and one with milliseconds).
    device_id = stack.a.device_id
    connected = datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)
    disconnected = datetime(2026, 3, 1, 12, 0, 7, 250_000, tzinfo=UTC)
    for kind, moment in ((IngestKind.CONNECTED, connected), (IngestKind.DISCONNECTED, disconnected)):
        item = Ingest(kind, device_id, Source.BROKER, int(moment.timestamp() * 1000))
        assert await stack.telemetry.writer.submit(item) == 0
    async with stack.database.session() as session:
        row = await session.scalar(select(DeviceStatus).where(DeviceStatus.device_id == device_id))
        assert row is not None
        assert (row.online, row.status) == (False, "offline")
        assert (row.connected_at, row.disconnected_at, row.last_seen) == (connected, disconnected, disconnected)
        later = select(DeviceStatus.device_id).where(DeviceStatus.last_seen > connected)
        assert list(await session.scalars(later)) == [device_id]
        exact = select(DeviceStatus.device_id).where(DeviceStatus.connected_at == connected)
        assert list(await session.scalars(exact)) == [device_id]
        after = select(DeviceStatus.device_id).where(DeviceStatus.disconnected_at > disconnected)
        assert list(await session.scalars(after)) == []


async def test_a_fleet_connecting_in_one_batch_gets_every_status_row(stack: Stack) -> None:
    # On SQLite a batch's status rows go in statements of up to 512 rows, padded with the last row again: 700
    # devices take two statements, 3 devices one padded to 4. Every row must say what happened to its device.
    async with stack.database.session() as session:
        fleet = [Device(id=new_id(), organization_id=stack.a.organization_id, name=f"f{n}") for n in range(700)]
        session.add_all(fleet)
    ids = [device.id for device in fleet]
    connected = datetime(2026, 5, 1, 8, 0, 0, 125_000, tzinfo=UTC)
    codes = await asyncio.gather(
        *(
            stack.telemetry.writer.submit(Ingest(IngestKind.CONNECTED, device_id, Source.BROKER, 1777622400125))
            for device_id in ids
        )
    )
    assert set(codes) == {0}
    gone = ids[:3]
    codes = await asyncio.gather(
        *(
            stack.telemetry.writer.submit(Ingest(IngestKind.DISCONNECTED, device_id, Source.BROKER, 1777622401000))
            for device_id in gone
        )
    )
    assert set(codes) == {0}
    async with stack.database.session() as session:
        rows = {row.device_id: row for row in await session.scalars(select(DeviceStatus))}
    assert set(ids) <= set(rows)
    assert all(rows[device_id].connected_at == connected for device_id in ids)
    assert [device_id for device_id in ids if not rows[device_id].online] == gone
    assert {rows[device_id].status for device_id in gone} == {"offline"}
    assert {rows[device_id].status for device_id in ids[3:]} == {"online"}


async def _is(value: Any, predicate: Callable[[Any], bool]) -> bool:
    return predicate(await value)


async def test_sensor_telemetry_topics(stack: Stack) -> None:
    live = stack.bus.subscribe(stack.a.organization_id, ["device/+/telemetry/#"])
    device = await asyncio.to_thread(PahoDevice(stack.port, stack.a).connect)
    base = f"device/{stack.a.device_id}/telemetry"
    try:
        assert await asyncio.to_thread(device.publish, f"{base}/humidity", 40.5) == 0
        assert await asyncio.to_thread(device.publish, f"{base}/air", {"co2": 412, "value": 3}) == 0
        assert await asyncio.to_thread(device.publish, f"{base}/air", b'"warm"') == PAYLOAD_FORMAT_INVALID
    finally:
        await asyncio.to_thread(device.close)
    rows = await _rows(stack, TelemetryValue)
    assert sorted((r.sensor, r.value, r.definition_id) for r in rows) == [("air", 3.0, None), ("humidity", 40.5, None)]
    first = await asyncio.wait_for(live.get(), 10)
    assert (first.type, first.topic, first.data["value"]) == ("telemetry", f"{base}/humidity", 40.5)


async def test_qos0_messages_are_stored_too(stack: Stack) -> None:
    device = await asyncio.to_thread(PahoDevice(stack.port, stack.a).connect)
    try:
        for n in range(20):
            payload = {"value": 20 + n % 5, "telemetryDataId": stack.a.definition_id}
            await asyncio.to_thread(device.publish, f"devices/{stack.a.device_id}/datastream", payload, qos=0)
    finally:
        await asyncio.to_thread(device.close)

    async def count() -> bool:
        return len(await _rows(stack, TelemetryValue)) == 20

    await _eventually(count)


async def test_a_starting_service_marks_devices_offline(stack: Stack) -> None:
    # As after kill -9: the previous run left the device online and could not record the disconnect.
    async with stack.database.session() as session:
        session.add(DeviceStatus(device_id=stack.a.device_id, online=True, status="online"))
    async with TelemetryService(stack.database, stack.telemetry.settings):
        row = (await _rows(stack, DeviceStatus))[0]
        assert (row.online, row.status) == (False, "offline")
        assert row.disconnected_at is not None


async def test_a_will_message_sets_the_status_when_the_connection_is_lost(stack: Stack) -> None:
    device = PahoDevice(stack.port, stack.a)
    will = {"status": "offline", "metadata": {"reason": "connection lost", "battery": 12}}
    device.client.will_set(f"devices/{stack.a.device_id}/status", json.dumps(will), qos=1)
    await asyncio.to_thread(device.connect)
    sock = device.client.socket()
    assert sock is not None
    sock.close()  # no DISCONNECT: the broker publishes the will
    await asyncio.to_thread(device.client.loop_stop)

    async def will_applied() -> bool:
        rows = await _rows(stack, DeviceStatus)
        return bool(rows) and (rows[0].status_metadata or {}).get("reason") == "connection lost"

    await _eventually(will_applied)
    row = (await _rows(stack, DeviceStatus))[0]
    assert (row.online, row.status, row.battery) == (False, "offline", 12.0)


async def test_a_qos1_resend_after_a_reconnect_is_stored_once(stack: Stack) -> None:
    topic = f"devices/{stack.a.device_id}/datastream"
    payload = json.dumps({"value": 7, "telemetryDataId": stack.a.definition_id}).encode()
    credentials: dict[str, Any] = {
        "username": stack.a.device_id,
        "password": stack.a.token.encode(),
        "clean_start": False,
    }
    first = await RawClient.open(("127.0.0.1", stack.port), PROTOCOL_V311)
    await first.connect("resender", **credentials)
    first.send(Publish(topic, payload, qos=1, packet_id=11))
    await first.close()  # gone before its PUBACK could be read
    second = await RawClient.open(("127.0.0.1", stack.port), PROTOCOL_V311)
    assert (await second.connect("resender", **credentials)).session_present
    second.send(Publish(topic, payload, qos=1, packet_id=11, dup=True))
    assert await second.receive() == Puback(11)
    second.send(Publish(topic, payload, qos=1, packet_id=11, dup=True))
    assert await second.receive() == Puback(11)
    await second.close()
    assert [row.value for row in await _rows(stack, TelemetryValue)] == [7]


async def test_a_message_the_database_refuses_is_rejected_alone(stack: Stack) -> None:
    # PostgreSQL text cannot hold U+0000 (SQLSTATE 22021): the database refuses the row, not the parser.
    # SQLite stores it. Either way the valid messages of the same batch are stored.
    device = await asyncio.to_thread(PahoDevice(stack.port, stack.a).connect)
    topic = f"devices/{stack.a.device_id}/datastream"
    try:
        stack.telemetry.writer.max_delay = 0.2  # let the three share one batch
        publishing = [
            asyncio.to_thread(device.publish, topic, {"value": value, "telemetryDataId": stack.a.definition_id})
            for value in (1, "on\u0000off", 2)
        ]
        codes = await asyncio.gather(*publishing)
    finally:
        await asyncio.to_thread(device.close)
    refused = stack.database.dialect == "postgresql"
    assert codes == [0, PAYLOAD_FORMAT_INVALID if refused else 0, 0]
    values = sorted(row.raw for row in await _rows(stack, TelemetryValue))
    assert values == (["1", "2"] if refused else ["1", "2", "on\u0000off"])
    rejected = await _rows(stack, RejectedMessage)
    if refused:
        assert [(r.field, r.reason) for r in rejected] == [("payload", "refused by the database: invalid value")]
        assert stack.telemetry.writer.refused == 1
        assert stack.telemetry.writer.outages == 0
    else:
        assert not rejected
