"""The broker page in Chromium: a paho client is listed with its subscriptions, found by search, and kicked."""

from __future__ import annotations

import asyncio
import re
import threading

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from playwright.async_api import expect

from mqtthub.console.session import CSRF_FIELD
from mqtthub.mqtt.reason_codes import ReasonCode
from tests.integration.console.actors import MEMBER_EMAIL, MEMBER_PASSWORD, add_member
from tests.integration.console.forms import signed_in
from tests.support.browser import ConsoleTab
from tests.support.served import LocalHub

CLIENT_ID = "watcher-1"


class Watcher:
    """An app on paho (MQTT 5) subscribed to ``sensors/+/temp``; records the reason it was disconnected with."""

    def __init__(self, port: int, token: str) -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=CLIENT_ID, protocol=MQTTProtocolVersion.MQTTv5)
        self.client.username_pw_set(token, token)
        # It must not come back on its own while the test looks at the list.
        self.client.reconnect_delay_set(min_delay=120, max_delay=120)
        self.subscribed = threading.Event()
        self.dropped = threading.Event()
        self.reason: int | None = None
        self.client.on_connect = lambda client, userdata, flags, reason, properties: (
            client.subscribe("sensors/+/temp", qos=1) if not reason.is_failure else None
        )
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.client.on_disconnect = self._disconnected
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _disconnected(
        self, client: paho.Client, userdata: object, flags: object, reason: object, props: object
    ) -> None:
        self.reason = getattr(reason, "value", None)
        self.dropped.set()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


async def _watcher(hub: LocalHub, org: str) -> Watcher:
    rights = {"subscribe": ["sensors/#"], "publish": ["sensors/#"]}
    made = await hub.client.post(f"/api/v1/organizations/{org}/mqtt-tokens", json={"name": "w", "permissions": rights})
    watcher = Watcher(hub.mqtt_port, made.json()["token"])
    assert await asyncio.to_thread(watcher.subscribed.wait, 10)
    return watcher


async def test_a_client_is_listed_and_kicked(hub: LocalHub, admin_tab: ConsoleTab) -> None:
    page = admin_tab.page
    org = page.url.rsplit("/", 1)[1]
    watcher = await _watcher(hub, org)
    try:
        await admin_tab.open("Broker")
        await expect(page.locator('[data-figure="clientsConnected"]')).to_have_text(re.compile(r"^[1-9]\d*$"))
        await expect(page.locator('[data-figure="uptime"]')).to_have_text(re.compile(r"\d+ (s|min|h|d)"))
        row = page.locator(f'table.clients tr[data-client-id="{CLIENT_ID}"]')
        await expect(row).to_contain_text("sensors/+/temp")
        await expect(row).to_contain_text("MQTT 5.0")
        await expect(page.locator("table.subscriptions")).to_contain_text("sensors/+/temp")

        search = page.get_by_label("Search clients")
        await search.fill("no such client")
        await expect(page.get_by_text("No connected client matches")).to_be_visible()
        await search.fill("watcher")
        await expect(row).to_be_visible()

        await row.get_by_role("button", name=f"Kick {CLIENT_ID}").click()
        await expect(page.locator("#broker-clients")).to_contain_text(f"Disconnected {CLIENT_ID}.")
        await expect(row).to_have_count(0)
        assert await asyncio.to_thread(watcher.dropped.wait, 10)
        assert watcher.reason == ReasonCode.ADMINISTRATIVE_ACTION
    finally:
        watcher.close()


async def test_a_member_sees_clients_but_may_not_kick(hub: LocalHub) -> None:
    org = str((await hub.client.get("/api/v1/organizations")).json()["organizations"][0]["id"])
    await add_member(hub, org)
    watcher = await _watcher(hub, org)
    try:
        async with signed_in(hub, MEMBER_EMAIL, MEMBER_PASSWORD) as (client, csrf):
            page = await client.get(f"/ui/orgs/{org}/broker")
            assert CLIENT_ID in page.text
            assert "Kick" not in page.text
            beyond = await client.get(f"/ui/orgs/{org}/broker", params={"offset": 50})
            assert "No clients on this page." in beyond.text
            forced = await client.post(
                f"/ui/orgs/{org}/broker/kick", data={"client_id": CLIENT_ID, "principal_id": "x", CSRF_FIELD: csrf}
            )
            assert forced.status_code == 403
        member = await hub.login(MEMBER_EMAIL, MEMBER_PASSWORD)
        async with member:
            listed = (await member.get(f"/api/v1/organizations/{org}/clients")).json()
            assert [each["client_id"] for each in listed["clients"]] == [CLIENT_ID]
            assert (listed["count"], listed["offset"], listed["limit"]) == (1, 0, 100)
            further = (await member.get(f"/api/v1/organizations/{org}/clients", params={"offset": 1})).json()
            assert (further["clients"], further["count"]) == ([], 1)
            assert listed["clients"][0]["subscriptions"] == [
                {"topic_filter": "sensors/+/temp", "qos": 1, "share_group": None}
            ]
            assert (await member.delete(f"/api/v1/organizations/{org}/clients/{CLIENT_ID}")).status_code == 403
            assert (await member.get("/api/v1/broker/clients")).status_code == 403
            assert (await member.get("/api/v1/broker")).json()["clients_connected"] >= 1
        assert not watcher.dropped.is_set()
        # An administrator may: the client is told why (0x98), and an unknown client is a 404.
        assert (await hub.client.delete(f"/api/v1/organizations/{org}/clients/nobody")).status_code == 404
        assert (await hub.client.delete(f"/api/v1/organizations/{org}/clients/{CLIENT_ID}")).status_code == 204
        assert await asyncio.to_thread(watcher.dropped.wait, 10)
        assert watcher.reason == ReasonCode.ADMINISTRATIVE_ACTION
    finally:
        watcher.close()
