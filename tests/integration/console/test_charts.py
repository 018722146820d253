"""A device's sensor charts: a paho device publishes and its sensors are charted live, with their thresholds.

Charts are checked by what the page's script drew from (each chart's ``data-points``), not by pixels. The chart
data route is also asked directly: long ranges come back as per-bucket aggregates, at most ``MAX_POINTS``.
"""

from __future__ import annotations

import asyncio
import json
import time

from playwright.async_api import expect

from mqtthub.console.charts import MAX_POINTS
from mqtthub.models import TelemetryValue
from tests.integration.console.actors import Device, new_device
from tests.integration.console.forms import signed_in
from tests.support.access import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.support.browser import ConsoleTab
from tests.support.served import LocalHub

HOUR_MS = 3_600_000


async def _published(device: Device, topic: str, payload: object) -> None:
    sent = device.client.publish(topic, json.dumps(payload).encode(), qos=1)
    await asyncio.to_thread(sent.wait_for_publish, 10)


async def test_a_device_publishes_and_its_sensors_are_charted_live(hub: LocalHub, admin_tab: ConsoleTab) -> None:
    page = admin_tab.page
    org = page.url.rsplit("/", 1)[1]
    device_id, token, definition_id = await new_device(hub, org, "greenhouse")
    # One reading two hours ago: inside the last 24 hours, outside the last hour.
    earlier = {"value": 12.5, "telemetryDataId": definition_id, "timestamp": int(time.time() * 1000) - 2 * HOUR_MS}
    answer = await hub.client.post(
        f"/api/v1/devices/{device_id}/datastream", json=earlier, headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 201, answer.text

    await page.goto(admin_tab.url(f"/ui/orgs/{org}/devices/{device_id}"))
    temperature = page.locator('figure.sensor-chart[data-sensor="temperature"]')
    await expect(temperature).to_have_attribute("data-points", "1")
    await expect(temperature).to_contain_text("Temperature (C)")
    await expect(temperature).to_contain_text("thresholds min 0, max 30")
    await expect(temperature.locator("canvas")).to_have_count(1)
    await page.get_by_label("Time range").select_option("1h")
    await expect(temperature).to_have_attribute("data-points", "0")
    await expect(temperature).to_contain_text("No readings of Temperature in this range.")

    device = Device(hub.mqtt_port, device_id, token)
    try:
        assert await asyncio.to_thread(device.connected.wait, 10)
        await _published(device, f"devices/{device_id}/datastream", {"value": 21.5, "telemetryDataId": definition_id})
        await expect(temperature).to_have_attribute("data-points", "1")
        await _published(device, f"devices/{device_id}/datastream", {"value": "22.0", "telemetryDataId": definition_id})
        await expect(temperature).to_have_attribute("data-points", "2")
        # Dated two hours back: before the hour shown, left out. Dated ten minutes back: charted in time order.
        now_ms = int(time.time() * 1000)
        for minutes in (120, 10):
            reading = {"value": 20, "telemetryDataId": definition_id, "timestamp": now_ms - minutes * 60_000}
            await _published(device, f"devices/{device_id}/datastream", reading)
        await expect(temperature).to_have_attribute("data-points", "3")
        # A sensor the page did not chart yet appears with its reading.
        await _published(device, f"device/{device_id}/telemetry/humidity", 40)
        humidity = page.locator('figure.sensor-chart[data-sensor="humidity"]')
        await expect(humidity).to_have_attribute("data-points", "1")
    finally:
        device.close()

    await page.get_by_label("Time range").select_option("24h")
    await expect(temperature).to_have_attribute("data-points", "5")
    # A custom range in the past holds none of them.
    await page.get_by_label("Time range").select_option("custom")
    await page.get_by_label("From", exact=True).fill("2020-01-01T00:00")
    await page.get_by_label("To", exact=True).fill("2020-01-02T00:00")
    await page.locator("#chart-range").get_by_role("button", name="Show").click()
    await expect(temperature).to_have_attribute("data-points", "0")
    await expect(humidity).to_have_attribute("data-points", "0")


async def test_a_device_without_readings_shows_the_empty_state(hub: LocalHub, admin_tab: ConsoleTab) -> None:
    page = admin_tab.page
    org = page.url.rsplit("/", 1)[1]
    devices = f"/api/v1/organizations/{org}/devices"
    device_id = (await hub.client.post(devices, json={"name": "silent"})).json()["id"]
    await page.goto(admin_tab.url(f"/ui/orgs/{org}/devices/{device_id}"))
    await expect(page.locator("#sensors")).to_have_attribute("aria-busy", "false")
    await expect(page.get_by_text("No readings in this range")).to_be_visible()
    await expect(page.locator("figure.sensor-chart")).to_have_count(0)


async def test_long_ranges_are_aggregated_on_the_server(hub: LocalHub) -> None:
    org = str((await hub.client.get("/api/v1/organizations")).json()["organizations"][0]["id"])
    device_id, _token, definition_id = await new_device(hub, org, "busy")
    now_ms = int(time.time() * 1000)
    # A reading a minute for three days; the first one of them below the threshold.
    count = 3 * 24 * 60
    async with hub.hub.database.session() as session:
        session.add_all(
            TelemetryValue(
                device_id=device_id,
                definition_id=definition_id,
                sensor="temperature",
                value=-5.0 if n == 0 else float(n % 20),
                raw=str(n),
                source="mqtt",
                ts_ms=now_ms - (count - n) * 60_000,
                received_ms=now_ms,
            )
            for n in range(count)
        )
        await session.commit()
    async with signed_in(hub, ADMIN_EMAIL, ADMIN_PASSWORD) as (client, _csrf):
        url = f"/ui/orgs/{org}/devices/{device_id}/charts"
        last_hour = {"range": "custom", "from": str(now_ms - HOUR_MS), "to": str(now_ms)}
        hour = (await client.get(url, params=last_hour)).json()["sensors"][0]
        assert hour["bucketMs"] is None
        assert len(hour["times"]) == len(hour["values"]) == 60
        assert hour["times"] == sorted(hour["times"])
        assert (hour["min"], hour["max"], hour["unit"]) == (0, 30, "C")

        week = (await client.get(url, params={"range": "7d"})).json()["sensors"][0]
        assert week["bucketMs"] == 7 * 24 * 3600 * 1000 // MAX_POINTS // 1000 * 1000 + 1000
        assert 0 < len(week["times"]) <= MAX_POINTS
        assert min(week["lows"]) == -5.0
        assert max(week["highs"]) == 19.0
        assert all(
            low <= value <= high for low, value, high in zip(week["lows"], week["values"], week["highs"], strict=True)
        )

        for params in ({"range": "2w"}, {"range": "custom"}, {"range": "custom", "from": "5", "to": "4"}):
            refused = await client.get(url, params=params)
            assert refused.status_code == 422, params
        assert (await client.get(f"/ui/orgs/{org}/devices/{org}/charts")).status_code == 404
