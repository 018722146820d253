"""Telemetry definitions and thresholds from the console: made, refused next to the field, changed, deleted.

What the console saves applies to the device's next reading (an alert or none); a member sees the definitions
but no form, and is refused the changes when forcing them.
"""

from __future__ import annotations

from playwright.async_api import Browser, Page, expect

from mqtthub.console.session import CSRF_HEADER
from tests.integration.console.actors import MEMBER_EMAIL, MEMBER_PASSWORD, add_member
from tests.support.browser import ConsoleTab, console_tab
from tests.support.served import LocalHub


async def _alerts(hub: LocalHub, device_id: str) -> list[float]:
    return [alert["value"] for alert in (await hub.client.get(f"/api/v1/devices/{device_id}/alerts")).json()["data"]]


async def _reading(hub: LocalHub, device_id: str, token: str, definition_id: int, value: float) -> None:
    answer = await hub.client.post(
        f"/api/v1/devices/{device_id}/datastream",
        json={"value": value, "telemetryDataId": definition_id},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 201, answer.text


async def _fill(page: Page, **fields: str) -> None:
    for name, value in fields.items():
        await page.locator(f"#definition-{name}").fill(value)


async def test_definitions_are_made_changed_and_deleted_and_apply_to_the_next_reading(
    hub: LocalHub, admin_tab: ConsoleTab
) -> None:
    page = admin_tab.page
    org = page.url.rsplit("/", 1)[1]
    devices = f"/api/v1/organizations/{org}/devices"
    device_id = (await hub.client.post(devices, json={"name": "tank"})).json()["id"]
    token = (await hub.client.post(f"{devices}/{device_id}/tokens", json={})).json()["token"]
    await page.goto(admin_tab.url(f"/ui/orgs/{org}/devices/{device_id}"))
    await page.get_by_role("link", name="Telemetry definitions and thresholds").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Telemetry definitions")
    await expect(page.get_by_text("No definitions yet")).to_be_visible()

    # Refused by the API's own rules, with the message next to the field it is about.
    admin_tab.expect_error("status of 422")
    await _fill(page, key="level", unit="cm", min="50", max="10")
    await page.get_by_role("button", name="Create definition").click()
    await expect(page.locator("#definition-min-error")).to_have_text(
        "minThreshold must not be greater than maxThreshold"
    )
    await expect(page.locator("#definition-min")).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#definition-key")).to_have_value("level")
    await _fill(page, key="level?")
    await page.get_by_role("button", name="Create definition").click()
    await expect(page.locator("#definition-key-error")).to_contain_text("pattern")

    await _fill(page, key="level", unit="cm", min="10", max="90")
    await page.get_by_role("button", name="Create definition").click()
    row = page.locator("table.definitions tbody tr")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("level")
    await expect(row).to_contain_text("cm")
    await expect(row).to_contain_text("90")
    definition_id = int(await row.get_attribute("data-definition-id") or 0)

    await _fill(page, key="level", min="", max="")
    await page.get_by_role("button", name="Create definition").click()
    await expect(page.locator("#definition-key-error")).to_contain_text("already has a telemetry definition 'level'")

    await _reading(hub, device_id, token, definition_id, 95)
    assert await _alerts(hub, device_id) == [95]

    await page.get_by_role("link", name="Edit level").click()
    await expect(page.locator("#definition-max")).to_have_value("90")
    await _fill(page, max="5")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#definition-min-error")).to_have_text(
        "minThreshold must not be greater than maxThreshold"
    )
    await _fill(page, name="Water level", max="100")
    await page.get_by_role("button", name="Save").click()
    await expect(row).to_contain_text("Water level")
    await expect(row).to_contain_text("100")
    await _reading(hub, device_id, token, definition_id, 95)
    await _reading(hub, device_id, token, definition_id, 101)
    assert await _alerts(hub, device_id) == [101, 95]

    await page.get_by_role("button", name="Delete level").click()
    await expect(page.get_by_text("No definitions yet")).to_be_visible()
    listed = await hub.client.get(f"/api/v1/devices/{device_id}/telemetry-definitions")
    assert listed.json()["data"] == []


async def test_a_member_sees_definitions_but_cannot_change_them(hub: LocalHub, browser: Browser, viewport: str) -> None:
    org = str((await hub.client.get("/api/v1/organizations")).json()["organizations"][0]["id"])
    await add_member(hub, org)
    device_id = (await hub.client.post(f"/api/v1/organizations/{org}/devices", json={"name": "pump"})).json()["id"]
    made = await hub.client.post(
        f"/api/v1/devices/{device_id}/telemetry-definitions", json={"key": "rpm", "maxThreshold": 3000}
    )
    definition_id = made.json()["data"]["id"]
    base = f"/ui/orgs/{org}/devices/{device_id}/definitions"
    async with console_tab(browser, hub.http_url, viewport) as tab:
        page = tab.page
        await tab.sign_in(MEMBER_EMAIL, MEMBER_PASSWORD)
        await page.goto(tab.url(base))
        await expect(page.locator("table.definitions tbody tr")).to_contain_text("3000")
        await expect(page.get_by_role("button", name="Create definition")).to_have_count(0)
        await expect(page.get_by_role("link", name="Edit rpm")).to_have_count(0)
        await expect(page.get_by_role("button", name="Delete rpm")).to_have_count(0)
        csrf = await page.locator("body").get_attribute("hx-headers")
        assert csrf is not None
        headers = {CSRF_HEADER: csrf.split('"')[3]}
        forced: tuple[tuple[str, dict[str, str | float | bool]], ...] = (
            (base, {"key": "sneaky"}),
            (f"{base}/{definition_id}", {"max": "1"}),
            (f"{base}/{definition_id}/delete", {}),
        )
        for path, form in forced:
            answer = await page.request.post(tab.url(path), form=form, headers=headers, max_redirects=0)
            assert answer.status == 403, path
        assert (await page.request.get(tab.url(f"{base}/{definition_id}"), max_redirects=0)).status == 403
        tab.assert_clean()
    listed = (await hub.client.get(f"/api/v1/devices/{device_id}/telemetry-definitions")).json()["data"]
    assert [(row["key"], row["maxThreshold"]) for row in listed] == [("rpm", 3000)]
