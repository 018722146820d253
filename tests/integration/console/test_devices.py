"""The devices pages in Chromium: create a device and a token, see it go online live, revoke, disable, delete."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from playwright.async_api import Page, expect
from sqlalchemy import insert

from mqtthub.console.devices import PAGE_SIZE
from mqtthub.models import Device as DeviceRow
from tests.integration.console.actors import Device
from tests.integration.console.forms import signed_in
from tests.support.access import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.support.browser import ConsoleTab
from tests.support.served import LocalHub

TICK = timedelta(milliseconds=1)
ONLINE_WITHIN_MS = 2000
"""The acceptance bound: a device that connects shows online this soon, without a reload."""


async def _status(page: Page, device_id: str) -> str:
    return await page.locator(f'tr[data-device-id="{device_id}"] [data-field="online"]').inner_text()


async def test_create_a_device_and_token_and_see_it_online_live(hub: LocalHub, admin_tab: ConsoleTab) -> None:
    page = admin_tab.page
    await admin_tab.open("Devices")
    await expect(page.get_by_text("No devices yet")).to_be_visible()
    await page.get_by_label("New device name").fill("boiler sensor")
    await page.get_by_role("button", name="Create device").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("boiler sensor")
    device_id = (await page.locator("#device-id").inner_text()).strip()
    await expect(page.get_by_text("No tokens yet")).to_be_visible()

    await page.get_by_label("Token name (optional)").fill("firmware 2")
    await page.get_by_role("button", name="Create token").click()
    secret = page.locator("#new-token")
    await expect(secret).to_have_text(re.compile(r"^mqh_dev_"))
    token = (await secret.inner_text()).strip()
    await page.locator(".secret").get_by_role("button", name="Copy").click()
    assert await page.evaluate("navigator.clipboard.readText()") == token
    await expect(page.locator("table.tokens")).to_contain_text("firmware 2")
    assert token not in page.url

    status = page.locator(f'tr[data-device-id="{device_id}"] [data-field="online"]')
    await expect(status).to_have_text("offline")
    await page.evaluate("window.notReloaded = true")
    device = Device(hub.mqtt_port, device_id, token)
    try:
        await expect(status).to_have_text("online", timeout=ONLINE_WITHIN_MS)
        assert await page.evaluate("window.notReloaded === true")

        # The list shows it online too, and follows it: revoking its token disconnects it.
        await admin_tab.open("Devices")
        await expect(page.locator(f'tr[data-device-id="{device_id}"]')).to_contain_text("online")
        await page.get_by_role("link", name="boiler sensor").click()
        await page.locator("table.tokens").get_by_role("button", name="Revoke").click()
        await expect(page.locator("table.tokens")).to_contain_text("revoked")
        await expect(status).to_have_text("offline", timeout=5000)
    finally:
        device.close()

    await page.get_by_label("Name", exact=True).fill("boiler sensor (old)")
    await page.get_by_role("checkbox", name=re.compile("Enabled")).uncheck()
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("boiler sensor (old)")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("disabled")
    await page.get_by_role("button", name="Delete device").click()
    await expect(page).to_have_url(re.compile(r"/devices$"))
    assert admin_tab.confirmed[-1].startswith("Delete boiler sensor (old) with its tokens")  # asked before deleting
    await expect(page.get_by_text("No devices yet")).to_be_visible()
    devices = await hub.client.get(f"/api/v1/organizations/{page.url.split('/')[-2]}/devices")
    assert devices.json()["count"] == 0


async def test_search_and_paging(hub: LocalHub, admin_tab: ConsoleTab) -> None:
    org = admin_tab.page.url.rsplit("/", 1)[1]
    for index in range(55):
        name = f"pump {index:02d}" if index % 5 else f"valve {index:02d}"
        created = await hub.client.post(f"/api/v1/organizations/{org}/devices", json={"name": name})
        assert created.status_code == 201
    page = admin_tab.page
    await page.goto(admin_tab.url(f"/ui/orgs/{org}/devices"))
    await expect(page.locator(".count")).to_have_text("55 devices")
    await expect(page.locator("table.devices tbody tr")).to_have_count(50)
    await page.get_by_role("link", name="Next").click()
    await expect(page.locator("table.devices tbody tr")).to_have_count(5)
    await expect(page.get_by_text("Page 2 of 2")).to_be_visible()
    await page.get_by_label("Search devices").fill("valve")
    await expect(page.locator(".count")).to_have_text("11 devices matching “valve”")
    await expect(page.locator("table.devices tbody tr")).to_have_count(11)
    await page.get_by_label("Search devices").fill("nothing like it")
    await expect(page.get_by_text("No device matches")).to_be_visible()


async def test_paging_through_ten_thousand_devices(hub: LocalHub) -> None:
    org = str((await hub.client.get("/api/v1/organizations")).json()["organizations"][0]["id"])
    total = 10_050
    start = datetime.now(UTC)  # one device a millisecond, so that the order is known
    async with hub.hub.database.session() as session:
        await session.execute(
            insert(DeviceRow),
            [
                {
                    "organization_id": org,
                    "name": f"meter {n:05d}",
                    "device_metadata": {},
                    "created_at": start + n * TICK,
                }
                for n in range(total)
            ],
        )
    async with signed_in(hub, ADMIN_EMAIL, ADMIN_PASSWORD) as (client, _):
        first = await client.get(f"/ui/orgs/{org}/devices")
        assert "10,050 devices" in first.text
        assert first.text.count("<tr data-device-id=") == PAGE_SIZE
        assert "Page 1 of 201" in first.text
        last = await client.get(f"/ui/orgs/{org}/devices", params={"page": 201})
        assert last.text.count("<tr data-device-id=") == total - 200 * PAGE_SIZE
        assert "meter 10049" in last.text
        assert 'rel="next"' not in last.text
        found = await client.get(f"/ui/orgs/{org}/devices", params={"q": "meter 0999"}, headers={"HX-Request": "true"})
        assert "<html" not in found.text  # only the table, for htmx
        assert "10 devices matching" in found.text
        beyond = await client.get(f"/ui/orgs/{org}/devices", params={"page": 10**12})
        assert beyond.status_code == 422
