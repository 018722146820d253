"""Live messages in Chromium: follow a filter, pause, clear, pretty-print; publish to a ``mosquitto_sub``; a device's
datastream shows within a second."""

from __future__ import annotations

import asyncio
import json
import shutil

from playwright.async_api import expect

from tests.conftest import require
from tests.integration.console.actors import Device, new_device
from tests.support.browser import ConsoleTab
from tests.support.served import LocalHub

WAIT = 15.0
LIVE_WITHIN_MS = 1000
"""The acceptance bound: a device's message shows in the live view this soon after the hub acknowledged it."""


async def _api_token(hub: LocalHub, org: str) -> str:
    body = {"name": "listener", "permissions": {"subscribe": ["#"], "publish": ["#"]}}
    created = await hub.client.post(f"/api/v1/organizations/{org}/mqtt-tokens", json=body)
    assert created.status_code == 201, created.text
    return str(created.json()["token"])


async def test_follow_and_publish(hub: LocalHub, admin_tab: ConsoleTab) -> None:
    require(shutil.which("mosquitto_sub") is not None, "mosquitto-clients")
    page = admin_tab.page
    org = page.url.rsplit("/", 1)[1]
    port = str(hub.mqtt_port)
    token = await _api_token(hub, org)
    listener = await asyncio.create_subprocess_exec(
        *("mosquitto_sub", "-h", "127.0.0.1", "-p", port, "-u", token, "-P", token, "-q", "1"),
        *("-t", "factory/#", "-v", "-C", "2", "-W", str(int(WAIT))),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await admin_tab.open("Live messages")
        await expect(page.locator("#live-state")).to_have_text("Connected")
        await expect(page.locator("#live-empty")).to_be_visible()
        await page.locator("#live-subscribe").get_by_label("Topic filter").fill("factory/#")
        await page.get_by_role("button", name="Subscribe").click()
        await expect(page.locator("#live-filters")).to_contain_text("factory/#")

        await page.get_by_label("Topic", exact=True).fill("factory/line1/temperature")
        await page.get_by_label("Payload").fill('{"celsius": 21.5, "ok": true}')
        await page.get_by_label("QoS").select_option("1")
        await page.get_by_role("checkbox", name="Retain").check()
        await page.get_by_role("button", name="Publish").click()
        await expect(page.locator("#publish-result")).to_contain_text("to factory/line1/temperature (QoS 1, retained)")

        shown = page.locator("#live-messages li")
        await expect(shown).to_have_count(1)
        await expect(shown.first).to_contain_text("factory/line1/temperature")
        body = shown.first.locator("pre")
        assert await body.inner_text() == '{\n  "celsius": 21.5,\n  "ok": true\n}'
        await page.get_by_role("checkbox", name="Pretty-print JSON").uncheck()
        assert await body.inner_text() == '{"celsius": 21.5, "ok": true}'

        # Paused, messages are counted, not shown.
        await page.get_by_role("button", name="Pause").click()
        await page.get_by_label("Payload").fill("plain text")
        await page.get_by_label("QoS").select_option("0")
        await page.get_by_role("checkbox", name="Retain").uncheck()
        await page.get_by_role("button", name="Publish").click()
        await expect(page.locator("#live-state")).to_have_text("Paused: 1 message not shown")
        await expect(shown).to_have_count(1)
        await page.get_by_role("button", name="Resume").click()
        await page.get_by_role("button", name="Clear").click()
        await expect(shown).to_have_count(0)
        await expect(page.locator("#live-empty")).to_be_visible()

        stdout, stderr = await asyncio.wait_for(listener.communicate(), WAIT + 5)
        assert listener.returncode == 0, stderr.decode()
        assert stdout.decode().splitlines() == [
            'factory/line1/temperature {"celsius": 21.5, "ok": true}',
            "factory/line1/temperature plain text",
        ]
    finally:
        if listener.returncode is None:
            listener.kill()
            await listener.wait()


async def test_a_devices_datastream_shows_live_within_a_second(hub: LocalHub, admin_tab: ConsoleTab) -> None:
    page = admin_tab.page
    org = page.url.rsplit("/", 1)[1]
    device_id, token, definition_id = await new_device(hub, org, "boiler")
    await admin_tab.open("Live messages")
    await expect(page.locator("#live-state")).to_have_text("Connected")
    await page.locator("#live-subscribe").get_by_label("Topic filter").fill("devices/+/datastream")
    await page.get_by_role("button", name="Subscribe").click()
    await expect(page.locator("#live-filters")).to_contain_text("devices/+/datastream")

    device = Device(hub.mqtt_port, device_id, token)
    try:
        assert await asyncio.to_thread(device.connected.wait, WAIT)
        reading = json.dumps({"value": 61.5, "telemetryDataId": definition_id})
        sent = device.client.publish(f"devices/{device_id}/datastream", reading, qos=1)
        await asyncio.to_thread(sent.wait_for_publish, WAIT)  # PUBACK: stored
        shown = page.locator("#live-messages li")
        await expect(shown).to_have_count(1, timeout=LIVE_WITHIN_MS)
        await expect(shown.first).to_contain_text(f"devices/{device_id}/datastream")
        await expect(shown.first).to_contain_text("61.5")
    finally:
        device.close()
