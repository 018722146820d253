"""The overview in Chromium: figures, the rates chart and the last errors follow the hub live."""

from __future__ import annotations

import re

from playwright.async_api import expect

from tests.integration.console.actors import Device
from tests.support.browser import ConsoleTab
from tests.support.served import LocalHub


async def test_figures_follow_a_device_live(hub: LocalHub, admin_tab: ConsoleTab) -> None:
    page = admin_tab.page
    org = page.url.rsplit("/", 1)[1]
    device_id = (await hub.client.post(f"/api/v1/organizations/{org}/devices", json={"name": "probe"})).json()["id"]
    token = (await hub.client.post(f"/api/v1/organizations/{org}/devices/{device_id}/tokens", json={})).json()["token"]
    await expect(page.locator('[data-figure="online"]')).to_have_text("0 / 1")
    await expect(page.get_by_text("No rejected messages.")).to_be_visible()
    device = Device(hub.mqtt_port, device_id, token)
    try:
        await expect(page.locator('[data-figure="online"]')).to_have_text("1 / 1")
        await expect(page.locator('[data-figure="clients"]')).to_have_text(re.compile(r"^[1-9]\d*$"))
        for value in range(20):
            device.client.publish(f"device/{device_id}/telemetry/temperature", str(20 + value), qos=1)
        # A message the hub refuses is listed with its reason.
        device.client.publish(f"devices/{device_id}/datastream", "not json", qos=1)
        await expect(page.locator('[data-list="rejected"] li').first).to_contain_text(f"devices/{device_id}/datastream")
        await expect(page.get_by_text("No rejected messages.")).to_be_hidden()
        await expect(page.locator('[data-figure="rateIn"]')).to_have_text(re.compile(r"^\d+\.\d$"))
        await expect(page.locator("#rates-chart canvas")).to_have_count(1)
    finally:
        device.close()
    await expect(page.locator('[data-figure="online"]')).to_have_text("0 / 1")
