"""Commands: pending → delivered (device PUBACK, also after an offline period) → completed/failed (reply)."""

from __future__ import annotations

import asyncio
import json

from sqlalchemy import select

from mqtthub.models import DeviceCommand
from tests.integration.telemetry.conftest import Stack
from tests.integration.telemetry.support import WAIT, PahoDevice


async def _status(stack: Stack, command_id: str) -> str:
    async with stack.database.session() as session:
        command = await session.scalar(
            select(DeviceCommand).where(DeviceCommand.id == command_id).execution_options(populate_existing=True)
        )
        assert command is not None
        return command.status


async def _wait_status(stack: Stack, command_id: str, wanted: str) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT
    while await _status(stack, command_id) != wanted:
        assert asyncio.get_running_loop().time() < deadline, f"command never became {wanted}"
        await asyncio.sleep(0.05)


async def test_offline_device_with_persistent_session_gets_the_command_on_reconnect(stack: Stack) -> None:
    a = stack.a
    live = stack.bus.subscribe(a.organization_id, ["devices/+/commands"])

    def persistent() -> PahoDevice:
        return PahoDevice(stack.port, a, client_id="persistent-device", clean=False, session_expiry=300)

    device = await asyncio.to_thread(persistent().connect)
    await asyncio.to_thread(device.subscribe, f"devices/{a.device_id}/commands")
    await asyncio.to_thread(device.close)

    sent = await stack.commands.send_command(
        device_id=a.device_id,
        organization_id=a.organization_id,
        command="restart",
        parameters={"delay": 5, "reason": "maintenance"},
        created_by=None,
    )
    assert sent["status"] == "pending"
    assert await _status(stack, sent["id"]) == "pending"
    assert (await asyncio.wait_for(live.get(), WAIT)).data["status"] == "pending"

    device = await asyncio.to_thread(persistent().connect)
    try:
        topic, message = await asyncio.to_thread(device.messages.get, True, WAIT)
        assert topic == f"devices/{a.device_id}/commands"
        assert message["commandId"] == sent["id"]
        assert (message["command"], message["parameters"]) == ("restart", {"delay": 5, "reason": "maintenance"})
        await _wait_status(stack, sent["id"], "delivered")
        assert (await asyncio.wait_for(live.get(), WAIT)).data["status"] == "delivered"

        reply = {"commandId": sent["id"], "status": "completed", "result": {"uptime": 0}}
        code = await asyncio.to_thread(device.publish, f"devices/{a.device_id}/commands/reply", reply)
        assert code == 0
        assert await _status(stack, sent["id"]) == "completed"
        done = (await asyncio.wait_for(live.get(), WAIT)).data
        assert (done["status"], done["result"]) == ("completed", {"uptime": 0})

        unknown = {"commandId": "no-such-command", "status": "failed"}
        code = await asyncio.to_thread(device.publish, f"devices/{a.device_id}/commands/reply", unknown)
        assert code == 0x99
    finally:
        await asyncio.to_thread(device.close)


async def test_failed_reply_and_broadcast(stack: Stack) -> None:
    a = stack.a
    device = await asyncio.to_thread(PahoDevice(stack.port, a).connect)
    try:
        await asyncio.to_thread(device.subscribe, f"devices/{a.device_id}/commands")
        await asyncio.to_thread(device.subscribe, f"organizations/{a.organization_id}/broadcast")
        sent = await stack.commands.send_command(
            device_id=a.device_id,
            organization_id=a.organization_id,
            command="calibrate",
            parameters={},
            created_by=None,
        )
        topic, message = await asyncio.to_thread(device.messages.get, True, WAIT)
        assert message["commandId"] == sent["id"]
        await _wait_status(stack, sent["id"], "delivered")
        reply = {"commandId": sent["id"], "status": "failed", "error": "sensor busy"}
        assert await asyncio.to_thread(device.publish, f"devices/{a.device_id}/commands/reply", reply) == 0
        async with stack.database.session() as session:
            command = await session.get(DeviceCommand, sent["id"])
            assert command is not None
            assert (command.status, command.error) == ("failed", "sensor busy")
            assert command.completed_at is not None

        result = await stack.commands.broadcast(a.organization_id, {"notice": "maintenance at 02:00"})
        topic, message = await asyncio.to_thread(device.messages.get, True, WAIT)
        assert topic == f"organizations/{a.organization_id}/broadcast"
        assert message["message"] == {"notice": "maintenance at 02:00"}
        assert message["broadcastId"] == result["broadcastId"]
    finally:
        await asyncio.to_thread(device.close)
    assert json.dumps(result)


async def test_pending_commands_are_sent_when_a_device_subscribes(stack: Stack) -> None:
    a = stack.a
    sent = [
        await stack.commands.send_command(
            device_id=a.device_id, organization_id=a.organization_id, command=name, parameters={}, created_by=None
        )
        for name in ("first", "second")
    ]
    # Nobody was subscribed: the publish reached no one, the commands stay pending.
    assert [await _status(stack, command["id"]) for command in sent] == ["pending", "pending"]

    device = await asyncio.to_thread(PahoDevice(stack.port, a, v5=False).connect)
    try:
        await asyncio.to_thread(device.subscribe, f"devices/{a.device_id}/commands")
        received = [await asyncio.to_thread(device.messages.get, True, WAIT) for _ in sent]
        assert [message["commandId"] for _, message in received] == [command["id"] for command in sent]
        for command in sent:
            await _wait_status(stack, command["id"], "delivered")
        # The same filter again is no new subscription, and nothing is pending any more.
        await asyncio.to_thread(device.subscribe, f"devices/{a.device_id}/commands")
        await asyncio.sleep(0.3)
        assert device.messages.empty()
    finally:
        await asyncio.to_thread(device.close)


async def test_pending_commands_go_only_to_their_device(stack: Stack) -> None:
    a, b = stack.a, stack.b
    await stack.commands.send_command(
        device_id=a.device_id, organization_id=a.organization_id, command="mine", parameters={}, created_by=None
    )
    other = await asyncio.to_thread(PahoDevice(stack.port, b).connect)
    try:
        await asyncio.to_thread(other.subscribe, f"devices/{b.device_id}/commands")
        await asyncio.sleep(0.3)
        assert other.messages.empty()
    finally:
        await asyncio.to_thread(other.close)
