"""A device's alerts and rejected messages in Chromium: a paho device breaks a threshold and sends a bad payload."""

from __future__ import annotations

import asyncio
import json

from playwright.async_api import expect

from tests.integration.console.actors import Device
from tests.support.browser import ConsoleTab
from tests.support.served import LocalHub


async def test_a_threshold_breach_and_a_bad_payload_show_on_the_device_page(
    hub: LocalHub, admin_tab: ConsoleTab
) -> None:
    page = admin_tab.page
    org = page.url.rsplit("/", 1)[1]
    devices = f"/api/v1/organizations/{org}/devices"
    device_id = (await hub.client.post(devices, json={"name": "freezer"})).json()["id"]
    token = (await hub.client.post(f"{devices}/{device_id}/tokens", json={})).json()["token"]
    definition = await hub.client.post(
        f"/api/v1/devices/{device_id}/telemetry-definitions",
        json={"key": "temperature", "unit": "C", "minThreshold": -25, "maxThreshold": -15},
    )
    assert definition.status_code == 201, definition.text
    await page.goto(admin_tab.url(f"/ui/orgs/{org}/devices/{device_id}"))
    await expect(page.get_by_text("No alerts")).to_be_visible()
    await expect(page.get_by_text("No rejected messages")).to_be_visible()

    device = Device(hub.mqtt_port, device_id, token)
    try:
        assert await asyncio.to_thread(device.connected.wait, 10)
        topic = f"devices/{device_id}/datastream"
        reading = {"value": -3.5, "telemetryDataId": definition.json()["data"]["id"]}
        for payload in (json.dumps(reading).encode(), b"{not json"):
            sent = device.client.publish(topic, payload, qos=1)
            await asyncio.to_thread(sent.wait_for_publish, 10)
    finally:
        device.close()

    # Alerts and rejections are written by the ingest writer; wait until the API lists them, then refresh.
    for _ in range(100):
        listed = (await hub.client.get(f"/api/v1/devices/{device_id}/alerts")).json()["data"]
        refused = (await hub.client.get(f"/api/v1/organizations/{org}/rejected-messages")).json()["data"]
        if listed and refused:
            break
        await asyncio.sleep(0.1)
    await page.get_by_role("button", name="Refresh").click()
    alerts = page.locator("table.alerts tbody tr")
    await expect(alerts).to_have_count(1)
    await expect(alerts).to_contain_text("temperature")
    await expect(alerts).to_contain_text("above max")
    await expect(alerts).to_contain_text("-3.5")
    await expect(alerts).to_contain_text("-25.0 … -15.0")
    rejected = page.locator("table.rejected tbody tr")
    await expect(rejected).to_have_count(1)
    await expect(rejected).to_contain_text("mqtt")
    await expect(rejected).to_contain_text("payload")
    await expect(rejected).to_contain_text("{not json")
