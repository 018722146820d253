"""Document 001's flows against a real ``mqtthub serve``: MQTT and HTTP devices, WebSocket and Socket.IO apps."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import websockets

from tests.integration.telemetry.hubflows import (
    EVENTS,
    Admin,
    StreamClient,
    admin_client,
    poll,
    socketio_client,
    started_hub,
    stream_client,
)
from tests.integration.telemetry.support import PahoDevice, SeededDevice


def _comparable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("id", "source", "timestamp", "receivedAt")}


async def test_mqtt_and_http_devices_reach_the_same_rows_and_live_clients(database_url: str, tmp_path: Path) -> None:
    with contextlib.ExitStack() as exits:
        hub = await asyncio.to_thread(exits.enter_context, started_hub(tmp_path, database_url))
        async with admin_client(hub) as admin:
            org_a = admin.organization_id
            a = await admin.device(org_a, admin.short_id)
            other = await admin.call("POST", "/api/v1/organizations", json={"name": "Other Org"}, expect=201)
            b = await admin.device(other["id"], other["short_id"])
            ws_a = await stream_client(hub.http_url, admin)
            ws_b = await stream_client(hub.http_url, admin, b.organization_id)
            sio_a, sio_a_events = await socketio_client(hub.http_url, admin.token)
            sio_b, sio_b_events = await socketio_client(hub.http_url, admin.token, b.organization_id)
            try:
                await _device_flows(hub.port("MQTT"), admin, a, b)
                await poll(lambda: _has(ws_a, "datastream", 2))
                datastreams = ws_a.of("datastream")
                assert {e["data"]["source"] for e in datastreams} == {"mqtt", "http"}
                assert all(e["topic"] == f"devices/{a.device_id}/datastream" for e in datastreams)
                await poll(lambda: _true(any(e["data"]["battery"] == 85 for e in ws_a.of("status"))))
                await poll(lambda: _true(len([n for n, _ in sio_a_events if n == "datastream"]) == 2))
                assert {d["data"]["source"] for n, d in sio_a_events if n == "datastream"} == {"mqtt", "http"}

                # Organization B sees its own event first and never A's.
                await _http_datastream(admin, b, {"value": 22, "telemetryDataId": b.definition_id})
                await poll(lambda: _has(ws_b, "datastream", 1))
                await poll(lambda: _true(any(n == "datastream" for n, _ in sio_b_events)))
                for events in ([e for e in ws_b.events if e.get("event") in EVENTS], [d for _, d in sio_b_events]):
                    assert events
                    assert all(a.device_id not in e["topic"] for e in events)
                assert all(b.device_id not in e.get("topic", "") for e in ws_a.events)
            finally:
                await ws_a.close()
                await ws_b.close()
                await sio_a.disconnect()
                await sio_b.disconnect()


async def _has(client: StreamClient, event: str, count: int) -> bool:
    return len(client.of(event)) >= count


async def _true(value: bool) -> bool:
    return value


async def _http_datastream(admin: Admin, device: SeededDevice, body: dict[str, Any]) -> Any:
    response = await admin.http.post(
        f"/api/v1/devices/{device.device_id}/datastream",
        json=body,
        headers={"Authorization": f"Bearer {device.token}"},
    )
    assert response.status_code == 201, response.text
    return response.json()


async def _device_flows(port: int, admin: Admin, a: SeededDevice, b: SeededDevice) -> None:
    message = {"value": "25.6", "telemetryDataId": a.definition_id, "token": a.token, "urgent": False}
    status = {"status": "online", "timestamp": "2023-12-01T10:30:00Z", "metadata": {"battery": 85, "signal": -45}}
    device = await asyncio.to_thread(PahoDevice(port, a).connect)
    try:
        assert await asyncio.to_thread(device.publish, f"devices/{a.device_id}/datastream", message) == 0
        assert await asyncio.to_thread(device.publish, f"devices/{a.device_id}/status", status) == 0
    finally:
        await asyncio.to_thread(device.close)

    stored = await _http_datastream(admin, a, message)
    assert stored["data"]["value"] == 25.6
    # Document 001 puts the device token in the body; that authenticates too.
    response = await admin.http.post(f"/api/v1/devices/{a.device_id}/status", json=status | {"token": a.token})
    assert response.status_code == 201, response.text

    rows = (await admin.call("GET", f"/api/v1/devices/{a.device_id}/datastreams"))["data"]
    assert len(rows) == 2
    assert {row["source"] for row in rows} == {"mqtt", "http"}
    assert _comparable(rows[0]) == _comparable(rows[1])
    assert rows[0]["value"] == 25.6
    assert rows[0]["sensor"] == "temperature"

    current = (await admin.call("GET", f"/api/v1/devices/{a.device_id}/status"))["data"]
    assert (current["status"], current["battery"], current["signal"]) == ("online", 85, -45)
    assert current["lastSeen"] is not None

    # Invalid: 422 naming the field, and the rejected-message log has it.
    for body, field in (
        ({"value": 1}, "telemetryDataId"),
        ({"value": 1, "telemetryDataId": b.definition_id}, "telemetryDataId"),
    ):
        response = await admin.http.post(
            f"/api/v1/devices/{a.device_id}/datastream", json=body, headers={"Authorization": f"Bearer {a.token}"}
        )
        assert response.status_code == 422, response.text
        assert response.json()["field"] == field
    response = await admin.http.post(
        f"/api/v1/devices/{a.device_id}/datastream", content=b"{oops", headers={"Authorization": f"Bearer {a.token}"}
    )
    assert (response.status_code, response.json()["field"]) == (422, "payload")
    rejected = (await admin.call("GET", f"/api/v1/organizations/{a.organization_id}/rejected-messages"))["data"]
    assert [(r["field"], r["source"]) for r in rejected] == [
        ("payload", "http"),
        ("telemetryDataId", "http"),
        ("telemetryDataId", "http"),
    ]
    # Wrong credentials.
    response = await admin.http.post(f"/api/v1/devices/{a.device_id}/datastream", json=message | {"token": "nope"})
    assert response.status_code == 401
    response = await admin.http.post(
        f"/api/v1/devices/{a.device_id}/datastream", json=message, headers={"Authorization": f"Bearer {b.token}"}
    )
    assert response.status_code == 403


async def test_commands_broadcast_and_api_token_stream_over_http(tmp_path: Path) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
    with contextlib.ExitStack() as exits:
        hub = await asyncio.to_thread(exits.enter_context, started_hub(tmp_path, database_url))
        async with admin_client(hub) as admin:
            org = admin.organization_id
            a = await admin.device(org, admin.short_id)
            created = await admin.call(
                "POST", f"/api/v1/organizations/{org}/mqtt-tokens", json={"name": "dashboard"}, expect=201
            )
            api_token = created["token"]
            base = hub.http_url.replace("http://", "ws://") + "/api/v1/stream"

            # An API token keeps its subscribe permissions (device/+/telemetry/#) on the live stream.
            async with websockets.connect(f"{base}?token={api_token}&topics=devices/%2B/datastream") as refused:
                error = json.loads(await asyncio.wait_for(refused.recv(), 30))
                assert (error["event"], error["code"]) == ("error", "forbidden")
            async with websockets.connect(f"{base}?token=mqh_mqtt_nobody123_{'x' * 32}") as unknown:
                error = json.loads(await asyncio.wait_for(unknown.recv(), 30))
                assert (error["event"], error["code"]) == ("error", "unauthorized")
            stream = await _stream_with(base, api_token, "device/%2B/telemetry/%23")
            app = await _stream_with(base, admin.token, "devices/%2B/commands")

            device = await asyncio.to_thread(PahoDevice(hub.port("MQTT"), a).connect)
            try:
                await asyncio.to_thread(device.subscribe, f"devices/{a.device_id}/commands")
                await asyncio.to_thread(device.subscribe, f"organizations/{org}/broadcast")
                assert await asyncio.to_thread(device.publish, f"device/{a.device_id}/telemetry/humidity", 41.5) == 0
                await poll(lambda: _has(stream, "telemetry", 1))
                assert stream.of("telemetry")[0]["data"]["value"] == 41.5

                sent = await admin.call(
                    "POST",
                    f"/api/v1/devices/{a.device_id}/commands",
                    json={"command": "restart", "parameters": {"delay": 5}},
                    expect=201,
                )
                command_id = sent["data"]["id"]
                topic, message = await asyncio.to_thread(device.messages.get, True, 30)
                assert (topic, message["commandId"], message["command"]) == (
                    f"devices/{a.device_id}/commands",
                    command_id,
                    "restart",
                )

                async def delivered() -> bool:
                    found = await admin.call("GET", f"/api/v1/commands/{command_id}")
                    return bool(found["data"]["status"] == "delivered")

                await poll(delivered)
                reply = {"commandId": command_id, "status": "completed", "result": {"ok": True}}
                assert await asyncio.to_thread(device.publish, f"devices/{a.device_id}/commands/reply", reply) == 0
                listed = await admin.call("GET", f"/api/v1/devices/{a.device_id}/commands")
                assert [(c["id"], c["status"], c["result"]) for c in listed["data"]] == [
                    (command_id, "completed", {"ok": True})
                ]
                await poll(lambda: _has(app, "command", 3))
                assert [e["data"]["status"] for e in app.of("command")] == ["pending", "delivered", "completed"]
                assert not stream.of("command")

                result = await admin.call(
                    "POST", f"/api/v1/organizations/{org}/broadcast", json={"message": "hello"}, expect=202
                )
                topic, message = await asyncio.to_thread(device.messages.get, True, 30)
                assert topic == f"organizations/{org}/broadcast"
                assert (message["message"], message["broadcastId"]) == ("hello", result["data"]["broadcastId"])
            finally:
                await asyncio.to_thread(device.close)
                await stream.close()
                await app.close()

            async def offline() -> bool:
                status = (await admin.call("GET", f"/api/v1/devices/{a.device_id}/status"))["data"]
                return status["connected"] is False and status["status"] == "offline"

            await poll(offline)


async def _stream_with(base: str, token: str, topics: str) -> StreamClient:
    connection = await websockets.connect(f"{base}?token={token}&topics={topics}")
    ready = json.loads(await asyncio.wait_for(connection.recv(), 30))
    assert ready["event"] == "ready", ready
    return StreamClient(connection)
