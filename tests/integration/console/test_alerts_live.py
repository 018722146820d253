"""Alerts reach open pages without a reload: the device page's alert list and the overview's open-alerts figure.

What happened while the page's stream was not subscribed (before it first was, or while it was down) shows once it is.
"""

from __future__ import annotations

import asyncio
import json
import re

from playwright.async_api import WebSocketRoute, expect

from tests.integration.console.actors import Device, new_device
from tests.support.browser import ConsoleTab
from tests.support.served import LocalHub


async def test_a_threshold_breach_shows_on_the_open_device_page(hub: LocalHub, admin_tab: ConsoleTab) -> None:
    page = admin_tab.page
    org = page.url.rsplit("/", 1)[1]
    device_id, token, definition_id = await new_device(hub, org, "cold room")
    await page.goto(admin_tab.url(f"/ui/orgs/{org}/devices/{device_id}"))
    await expect(page.get_by_text("No alerts")).to_be_visible()

    device = Device(hub.mqtt_port, device_id, token)
    try:
        assert await asyncio.to_thread(device.connected.wait, 10)
        for value in (12.0, 35.5):  # within 0 … 30, then above it
            payload = json.dumps({"value": value, "telemetryDataId": definition_id}).encode()
            sent = device.client.publish(f"devices/{device_id}/datastream", payload, qos=1)
            await asyncio.to_thread(sent.wait_for_publish, 10)
    finally:
        device.close()

    await expect(page.locator("#flash")).to_have_text("New alert: above max on temperature (35.5)")
    alerts = page.locator("table.alerts tbody tr")
    await expect(alerts).to_have_count(1)
    await expect(alerts).to_contain_text("above max")
    await expect(alerts).to_contain_text("35.5")
    await expect(page.locator('figure.sensor-chart[data-sensor="temperature"]')).to_have_attribute("data-points", "2")


async def test_the_overview_counts_a_new_alert_without_a_reload(hub: LocalHub, admin_tab: ConsoleTab) -> None:
    page = admin_tab.page
    org = page.url.rsplit("/", 1)[1]
    device_id, token, definition_id = await new_device(hub, org, "boiler")
    figure = page.locator('[data-figure="openAlerts"]')
    await expect(figure).to_have_text("0")
    answer = await hub.client.post(
        f"/api/v1/devices/{device_id}/datastream",
        json={"value": -4, "telemetryDataId": definition_id},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 201, answer.text
    await expect(figure).to_have_text("1")
    await expect(page.locator('[data-list="alerts"]')).to_contain_text(
        f"below_min on temperature = -4 (device {device_id})"
    )


async def test_what_happened_while_the_stream_was_down_shows_once_it_is_back(
    hub: LocalHub, admin_tab: ConsoleTab
) -> None:
    page = admin_tab.page
    org = page.url.rsplit("/", 1)[1]
    device_id, token, definition_id = await new_device(hub, org, "freezer")
    streams: list[WebSocketRoute] = []
    back = asyncio.Event()

    async def relay(socket: WebSocketRoute) -> None:
        # The page's stream goes through the test, which cuts the first connection and holds up the next one.
        streams.append(socket)
        if len(streams) > 1:
            await back.wait()
        socket.connect_to_server()

    await page.route_web_socket(re.compile(r"/api/v1/stream"), relay)
    await page.goto(admin_tab.url(f"/ui/orgs/{org}/devices/{device_id}"))
    temperature = page.locator('figure.sensor-chart[data-sensor="temperature"]')
    await expect(temperature).to_have_attribute("data-points", "0")
    await expect(page.get_by_text("No alerts")).to_be_visible()
    await streams[0].close()

    answer = await hub.client.post(
        f"/api/v1/devices/{device_id}/datastream",
        json={"value": 41, "telemetryDataId": definition_id},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 201, answer.text
    back.set()
    await expect(page.locator("table.alerts tbody tr")).to_have_count(1)
    await expect(temperature).to_have_attribute("data-points", "1")


async def test_what_happened_before_the_stream_was_first_subscribed_shows_once_it_is(
    hub: LocalHub, admin_tab: ConsoleTab
) -> None:
    page = admin_tab.page
    org = page.url.rsplit("/", 1)[1]
    device_id, token, definition_id = await new_device(hub, org, "late stream")
    opened = asyncio.Event()
    let_through = asyncio.Event()

    async def relay(socket: WebSocketRoute) -> None:
        # The page's stream is held up until the device is online and its reading stored.
        opened.set()
        await let_through.wait()
        socket.connect_to_server()

    await page.route_web_socket(re.compile(r"/api/v1/stream"), relay)
    await page.goto(admin_tab.url(f"/ui/orgs/{org}/devices/{device_id}"))
    status = page.locator(f'tr[data-device-id="{device_id}"] [data-field="online"]')
    temperature = page.locator('figure.sensor-chart[data-sensor="temperature"]')
    await expect(status).to_have_text("offline")
    await expect(temperature).to_have_attribute("data-points", "0")
    await asyncio.wait_for(opened.wait(), 10)

    device = Device(hub.mqtt_port, device_id, token)
    try:
        assert await asyncio.to_thread(device.connected.wait, 10)
        payload = json.dumps({"value": 21.5, "telemetryDataId": definition_id}).encode()
        sent = device.client.publish(f"devices/{device_id}/datastream", payload, qos=1)
        await asyncio.to_thread(sent.wait_for_publish, 10)
        for _ in range(100):  # the status row is written in the background, after the CONNACK
            answer = await hub.client.get(f"/api/v1/devices/{device_id}/status")
            if answer.json()["data"]["online"]:
                break
            await asyncio.sleep(0.1)
        assert answer.json()["data"]["online"], answer.text
        let_through.set()
        await expect(status).to_have_text("online")
        await expect(temperature).to_have_attribute("data-points", "1")
    finally:
        device.close()
