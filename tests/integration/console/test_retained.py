"""Retained messages in Chromium: what paho retained is listed and pretty-printed, and once cleared no longer sent."""

from __future__ import annotations

import asyncio
import json
import threading

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from playwright.async_api import expect

from mqtthub.console.session import CSRF_FIELD
from tests.integration.console.actors import MEMBER_EMAIL, MEMBER_PASSWORD, add_member
from tests.integration.console.forms import signed_in
from tests.support.browser import ConsoleTab
from tests.support.served import LocalHub

KITCHEN = "sensors/kitchen/temp"
HALL = "sensors/hall/temp"
MARKER = "sensors/marker"


class App:
    """An app on paho (MQTT 5) with an API token; records the messages it receives, in order."""

    def __init__(self, port: int, token: str) -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
        self.client.username_pw_set(token, token)
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.marked = threading.Event()
        self.received: list[tuple[str, bool]] = []
        self.client.on_connect = lambda client, userdata, flags, reason, properties: (
            self.connected.set() if not reason.is_failure else None
        )
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.client.on_message = self._message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _message(self, client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        self.received.append((message.topic, bool(message.retain)))
        if message.topic == MARKER:
            self.marked.set()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


async def _app(hub: LocalHub, org: str) -> App:
    rights = {"subscribe": ["sensors/#"], "publish": ["sensors/#"]}
    made = await hub.client.post(f"/api/v1/organizations/{org}/mqtt-tokens", json={"name": "a", "permissions": rights})
    app = App(hub.mqtt_port, made.json()["token"])
    assert await asyncio.to_thread(app.connected.wait, 10)
    return app


async def _retain(app: App, topic: str, payload: str) -> None:
    sent = app.client.publish(topic, payload, qos=1, retain=True)
    await asyncio.to_thread(sent.wait_for_publish, 10)


async def test_a_retained_message_is_listed_and_cleared(hub: LocalHub, admin_tab: ConsoleTab) -> None:
    page = admin_tab.page
    org = page.url.rsplit("/", 1)[1]
    publisher = await _app(hub, org)
    try:
        await _retain(publisher, KITCHEN, '{"c": 21.5, "unit": "C"}')
        await _retain(publisher, HALL, "19")
    finally:
        publisher.close()

    await admin_tab.open("Live messages")
    section = page.locator("#retained-messages")
    rows = page.locator("table.retained tbody tr")
    await expect(rows).to_have_count(2)
    kitchen = page.locator(f'table.retained tr[data-topic="{KITCHEN}"]')
    await kitchen.get_by_text("24 bytes").click()
    await expect(kitchen.locator("pre.payload")).to_have_text(json.dumps({"c": 21.5, "unit": "C"}, indent=2))

    await section.get_by_label("Topic filter").fill("sensors/+/humidity")
    await page.get_by_role("button", name="Show retained").click()
    await expect(page.locator("#retained")).to_contain_text("No retained message matches")
    await section.get_by_label("Topic filter").fill("sensors/#")
    await page.get_by_role("button", name="Show retained").click()
    await expect(rows).to_have_count(2)

    await kitchen.get_by_role("button", name=f"Clear {KITCHEN}").click()
    await expect(page.locator("#retained")).to_contain_text(f"Cleared the retained message of {KITCHEN}.")
    await expect(rows).to_have_count(1)
    await expect(rows).to_contain_text(HALL)

    # A new subscriber gets the hall's retained message, and nothing for the kitchen.
    subscriber = await _app(hub, org)
    try:
        subscriber.client.subscribe("sensors/#", qos=1)
        assert await asyncio.to_thread(subscriber.subscribed.wait, 10)
        subscriber.client.publish(MARKER, "end", qos=1)
        assert await asyncio.to_thread(subscriber.marked.wait, 10)
        assert subscriber.received == [(HALL, True), (MARKER, False)]
    finally:
        subscriber.close()


async def test_a_member_browses_retained_messages_but_may_not_clear(hub: LocalHub) -> None:
    org = str((await hub.client.get("/api/v1/organizations")).json()["organizations"][0]["id"])
    await add_member(hub, org)
    publisher = await _app(hub, org)
    try:
        await _retain(publisher, HALL, "19")
    finally:
        publisher.close()
    async with signed_in(hub, MEMBER_EMAIL, MEMBER_PASSWORD) as (client, csrf):
        listed = await client.get(f"/ui/orgs/{org}/live/retained", headers={"HX-Request": "true"})
        assert HALL in listed.text
        assert "Clear" not in listed.text
        forced = await client.post(f"/ui/orgs/{org}/live/retained/clear", data={"topic": HALL, CSRF_FIELD: csrf})
        assert forced.status_code == 403
        bad = await client.get(f"/ui/orgs/{org}/live/retained", params={"filter": "a/#/b"})
        assert bad.status_code == 422
        assert "must be alone in the last level" in bad.text
    still = await hub.client.get(f"/api/v1/organizations/{org}/retained")
    assert [each["topic"] for each in still.json()["messages"]] == [HALL]
