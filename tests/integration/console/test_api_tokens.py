"""MQTT API tokens in Chromium: create one with publish rights, connect an app with it, revoke it: it is dropped."""

from __future__ import annotations

import asyncio
import re
import threading

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from playwright.async_api import expect

from mqtthub.console.session import CSRF_FIELD
from tests.integration.console.actors import MEMBER_EMAIL, MEMBER_PASSWORD, add_member
from tests.integration.console.forms import signed_in
from tests.support.browser import ConsoleTab
from tests.support.served import LocalHub


class App:
    """An app on paho (MQTT 5) connected with an API token; records its PUBACK reason codes and its drop."""

    def __init__(self, port: int, token: str) -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
        self.client.username_pw_set(token, token)
        self.connected = threading.Event()
        self.dropped = threading.Event()
        self.acks: list[int] = []
        self.client.on_connect = lambda client, userdata, flags, reason, properties: (
            self.connected.set() if not reason.is_failure else None
        )
        self.client.on_disconnect = lambda *args: self.dropped.set()
        self.client.on_publish = lambda client, userdata, mid, reason, properties: self.acks.append(reason.value)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


async def test_create_use_and_revoke_a_token(hub: LocalHub, admin_tab: ConsoleTab) -> None:
    page = admin_tab.page
    await page.get_by_role("link", name="MQTT API tokens").click()
    await expect(page.get_by_text("No MQTT API tokens yet")).to_be_visible()

    admin_tab.expect_error("422")
    await page.get_by_label("Name", exact=True).fill("dashboard")
    await page.get_by_label(re.compile("^Publish filters")).fill("alerts/#/x")
    await page.get_by_role("button", name="Create token").click()
    await expect(page.locator("#flash")).to_contain_text("must be alone in the last level")

    await page.get_by_label(re.compile("^Publish filters")).fill("alerts/#")
    await page.get_by_label("Expires after (days)").fill("7")
    await page.get_by_role("button", name="Create token").click()
    secret = page.locator("#new-token")
    await expect(secret).to_have_text(re.compile(r"^mqh_"))
    token = (await secret.inner_text()).strip()
    row = page.locator("table.api-tokens tbody tr")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("alerts/#")
    await expect(row).to_contain_text("device/+/telemetry/#")
    assert token not in page.url

    app = App(hub.mqtt_port, token)
    try:
        assert await asyncio.to_thread(app.connected.wait, 10)
        sent = app.client.publish("alerts/kitchen", b"smoke", qos=1)
        await asyncio.to_thread(sent.wait_for_publish, 10)
        assert app.acks == [0]
        await row.get_by_role("button", name="Revoke").click()
        await expect(row).to_contain_text("revoked")
        assert await asyncio.to_thread(app.dropped.wait, 10)
    finally:
        app.close()
    await page.reload()
    await expect(page.locator("table.api-tokens tbody tr")).to_contain_text("revoked")


async def test_a_member_has_no_token_page(hub: LocalHub) -> None:
    org = str((await hub.client.get("/api/v1/organizations")).json()["organizations"][0]["id"])
    await add_member(hub, org)
    async with signed_in(hub, MEMBER_EMAIL, MEMBER_PASSWORD) as (client, csrf):
        overview = await client.get(f"/ui/orgs/{org}")
        assert "MQTT API tokens" not in overview.text
        assert (await client.get(f"/ui/orgs/{org}/mqtt-tokens")).status_code == 403
        forced = await client.post(f"/ui/orgs/{org}/mqtt-tokens", data={"name": "sneaky", CSRF_FIELD: csrf})
        assert forced.status_code == 403
    listed = (await hub.client.get(f"/api/v1/organizations/{org}/mqtt-tokens")).json()
    assert listed["count"] == 0
