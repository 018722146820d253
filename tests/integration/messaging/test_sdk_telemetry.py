"""The SDK's telemetry and command methods against a real hub: a device reports over HTTP, an app reads and commands."""

from __future__ import annotations

import httpx

from mqtthub.client import AsyncHubClient, HubClient, ReadingPage
from tests.integration.messaging.conftest import wait_for
from tests.support.served import ThreadedHub


def test_history_commands_status_and_broadcast(shared_hub: ThreadedHub) -> None:
    org_id = shared_hub.admin.org_id
    with HubClient(shared_hub.http_url, token=shared_hub.admin.token) as hub:
        device = hub.create_device(org_id, "thermometer")
        secret = hub.create_device_token(org_id, device.id).token
        for value in (21.5, 22.5):
            reported = httpx.post(
                f"{shared_hub.http_url}/api/v1/devices/{device.id}/telemetry/temperature",
                json=value,
                headers={"Authorization": f"Bearer {secret}"},
            )
            assert reported.status_code == 201, reported.text

        def both_readings() -> ReadingPage | None:
            found = hub.get_datastreams(device.id, "temperature")
            return found if len(found.data) == 2 else None

        page = wait_for(both_readings, "two readings in the history")
        assert page.pagination.has_more is False
        assert hub.get_datastreams(device.id, limit=1).pagination.has_more is True
        assert hub.get_datastreams(device.id, bucket="1h").data

        command = hub.send_command(device.id, "reboot", {"delay": 5})
        assert (command.status, command.parameters) == ("pending", {"delay": 5})
        assert hub.get_command(command.command_id).command == "reboot"
        assert [c.command_id for c in hub.list_commands(device.id).data] == [command.command_id]
        assert hub.list_commands(device.id, status="completed").data == []

        status = hub.get_device_status(device.id)
        assert status.device_id == device.id
        assert status.connected is False

        sent = hub.broadcast(org_id, {"note": "maintenance at noon"})
        assert sent.topic == f"organizations/{org_id}/broadcast"


async def test_async_commands(shared_hub: ThreadedHub) -> None:
    org_id = shared_hub.admin.org_id
    async with AsyncHubClient(shared_hub.http_url, token=shared_hub.admin.token) as hub:
        device = await hub.create_device(org_id, "valve")
        command = await hub.send_command(device.id, "open")
        assert (await hub.get_command(command.command_id)).status == "pending"
        assert (await hub.list_commands(device.id)).pagination.limit == 100
