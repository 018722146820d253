"""Device commands in Chromium: send one, and see it go pending → delivered → completed as a paho device replies."""

from __future__ import annotations

import json

import paho.mqtt.client as paho
from playwright.async_api import expect

from mqtthub.console.session import CSRF_FIELD
from tests.integration.console.actors import MEMBER_EMAIL, MEMBER_PASSWORD, Device, add_member
from tests.integration.console.forms import signed_in
from tests.support.browser import ConsoleTab
from tests.support.served import LocalHub


async def _device(hub: LocalHub, org: str) -> tuple[str, str]:
    devices = f"/api/v1/organizations/{org}/devices"
    device = (await hub.client.post(devices, json={"name": "valve 7"})).json()
    token = (await hub.client.post(f"{devices}/{device['id']}/tokens", json={"name": "t"})).json()["token"]
    return str(device["id"]), str(token)


class Replier(Device):
    """A device that answers every command: ``completed`` with the parameters echoed, ``failed`` for ``explode``."""

    def __init__(self, port: int, device_id: str, token: str) -> None:
        super().__init__(port, device_id, token)
        self.device_id = device_id
        self.client.on_message = self._reply
        self.client.subscribe(f"devices/{device_id}/commands", qos=1)  # sent once connected

    def _reply(self, client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        command = json.loads(message.payload)
        if command["command"] == "explode":
            reply = {"commandId": command["commandId"], "status": "failed", "error": "not supported"}
        else:
            reply = {"commandId": command["commandId"], "status": "completed", "result": command["parameters"]}
        client.publish(f"devices/{self.device_id}/commands/reply", json.dumps(reply), qos=1)


async def test_send_a_command_and_follow_it_to_completed(hub: LocalHub, admin_tab: ConsoleTab) -> None:
    page = admin_tab.page
    org = page.url.rsplit("/", 1)[1]
    device_id, token = await _device(hub, org)
    await page.goto(admin_tab.url(f"/ui/orgs/{org}/devices/{device_id}"))
    await expect(page.get_by_text("No commands sent to this device yet")).to_be_visible()

    # Offline, the command stays pending; bad parameters are refused with the reason.
    admin_tab.expect_error("422")
    await page.get_by_label("Command", exact=True).fill("open")
    await page.get_by_label("Parameters (JSON object, optional)").fill("[1, 2]")
    await page.get_by_role("button", name="Send command").click()
    await expect(page.locator("#flash")).to_contain_text("a JSON object is needed")
    await page.get_by_label("Parameters (JSON object, optional)").fill('{"percent": 40}')
    await page.get_by_role("button", name="Send command").click()
    status = page.locator("table.commands tbody tr").first.locator('[data-field="status"]')
    await expect(status).to_have_text("pending")

    # The device comes online, gets the pending command, replies; the page follows without a reload.
    await page.evaluate("window.notReloaded = true")
    device = Replier(hub.mqtt_port, device_id, token)
    try:
        await expect(status).to_have_text("completed", timeout=10_000)
        await expect(page.locator("table.commands tbody tr").first).to_contain_text('{"percent": 40}')
        await page.get_by_label("Command", exact=True).fill("explode")
        await page.get_by_label("Parameters (JSON object, optional)").fill("")
        await page.get_by_role("button", name="Send command").click()
        first = page.locator("table.commands tbody tr").first
        await expect(first.locator('[data-field="status"]')).to_have_text("failed", timeout=10_000)
        await expect(first).to_contain_text("not supported")
        await expect(page.locator("table.commands tbody tr")).to_have_count(2)
        assert await page.evaluate("window.notReloaded === true")
    finally:
        device.close()
    listed = (await hub.client.get(f"/api/v1/devices/{device_id}/commands")).json()
    assert [row["status"] for row in listed["data"]] == ["failed", "completed"]


async def test_a_member_sees_commands_but_cannot_send(hub: LocalHub) -> None:
    org = str((await hub.client.get("/api/v1/organizations")).json()["organizations"][0]["id"])
    device_id, _ = await _device(hub, org)
    sent = await hub.client.post(f"/api/v1/devices/{device_id}/commands", json={"command": "x"})
    assert sent.status_code == 201, sent.text
    await add_member(hub, org)
    async with signed_in(hub, MEMBER_EMAIL, MEMBER_PASSWORD) as (client, csrf):
        page = await client.get(f"/ui/orgs/{org}/devices/{device_id}")
        assert page.status_code == 200
        assert "Send command" not in page.text
        listed = await client.get(f"/ui/orgs/{org}/devices/{device_id}/commands", headers={"HX-Request": "true"})
        assert listed.status_code == 200
        assert "<code>x</code>" in listed.text
        forced = await client.post(
            f"/ui/orgs/{org}/devices/{device_id}/commands", data={"command": "reboot", CSRF_FIELD: csrf}
        )
        assert forced.status_code == 403
    commands = (await hub.client.get(f"/api/v1/devices/{device_id}/commands")).json()
    assert [row["command"] for row in commands["data"]] == ["x"]
