"""Pending device commands after ``kill -9`` of a real hub process: delivered when the device comes back."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
from pathlib import Path

from tests.conftest import require
from tests.integration.telemetry.hubflows import Admin, admin_client, poll, started_hub
from tests.integration.telemetry.support import WAIT, PahoDevice


async def _send(admin: Admin, device_id: str, command: str) -> str:
    sent = await admin.call("POST", f"/api/v1/devices/{device_id}/commands", json={"command": command}, expect=201)
    return str(sent["data"]["id"])


async def _delivered(admin: Admin, device_id: str, command_id: str) -> bool:
    body = await admin.call("GET", f"/api/v1/devices/{device_id}/commands/{command_id}")
    return bool(body["data"]["status"] == "delivered")


async def test_pending_commands_reach_devices_after_kill_9(tmp_path: Path, database_url: str) -> None:
    require(shutil.which("mosquitto_sub") is not None, "mosquitto-clients")
    with contextlib.ExitStack() as exits:
        first = await asyncio.to_thread(exits.enter_context, started_hub(tmp_path, database_url))
        async with admin_client(first) as admin:
            org = admin.organization_id
            short_id = admin.short_id
            persistent = await admin.device(org, short_id)
            fresh = await admin.device(org, short_id)
            # A 5.0 device with a persistent session subscribes, then goes offline; the other never connected.
            device = PahoDevice(
                first.port("MQTT"), persistent, client_id="keeps-session", clean=False, session_expiry=3600
            )
            await asyncio.to_thread(device.connect)
            await asyncio.to_thread(device.subscribe, f"devices/{persistent.device_id}/commands")
            await asyncio.to_thread(device.close)
            queued = await _send(admin, persistent.device_id, "reboot")
            pending = await _send(admin, fresh.device_id, "calibrate")
        first.process.kill()
        first.process.wait(WAIT)
        exits.close()

        second = await asyncio.to_thread(exits.enter_context, started_hub(tmp_path, database_url))
        async with admin_client(second) as admin:
            # The restored session still holds its command: no SUBSCRIBE needed, and its PUBACK marks it delivered.
            device = PahoDevice(
                second.port("MQTT"), persistent, client_id="keeps-session", clean=False, session_expiry=3600
            )
            await asyncio.to_thread(device.connect)
            try:
                topic, message = await asyncio.to_thread(device.messages.get, True, WAIT)
            finally:
                await asyncio.to_thread(device.close)
            assert (topic, message["commandId"], message["command"]) == (
                f"devices/{persistent.device_id}/commands",
                queued,
                "reboot",
            )
            await poll(lambda: _delivered(admin, persistent.device_id, queued))

            # A device without a session gets its pending command when it subscribes (mosquitto_sub, 3.1.1).
            credentials = ["-u", fresh.device_id, "-P", fresh.token]
            topic_args = ["-q", "1", "-t", f"devices/{fresh.device_id}/commands", "-C", "1", "-W", str(int(WAIT))]
            result = await asyncio.to_thread(
                subprocess.run,
                ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(second.port("MQTT")), *credentials, *topic_args],
                capture_output=True,
                text=True,
                timeout=WAIT + 10,
            )
            assert result.returncode == 0, result.stderr
            assert json.loads(result.stdout)["commandId"] == pending
            await poll(lambda: _delivered(admin, fresh.device_id, pending))
