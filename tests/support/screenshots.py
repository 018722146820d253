"""Screenshots of the web console's main pages for the documentation, taken from a real hub by Chromium.

``scripts/screenshots`` runs this module: it serves a hub on a fresh SQLite database in a temporary directory,
gives it a small fleet through the public API and MQTT (devices with thresholds, six hours of readings, statuses
with battery and signal, one alert, an MQTT API token, three devices online), signs in as the administrator
and photographs each page of :data:`SHOTS` at a desktop's width, plus the device list at a phone's 390 px, into
``docs/screenshots/`` (``--out`` elsewhere). The README and ``docs/console.md`` show them. The pictures change with
every run (times, identifiers), so regenerate them when a page changes, not on every commit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from playwright.async_api import Page

from tests.support.access import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.support.browser import ConsoleTab, chromium, console_tab
from tests.support.served import LocalHub, hub_settings, serve_in_process

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "screenshots"
FLEET = {
    "greenhouse-north": (18.0, 30.0),
    "greenhouse-south": (18.0, 30.0),
    "cold-store": (-25.0, -15.0),
    "boiler-room": (40.0, 85.0),
    "pump-station-7": (5.0, 60.0),
}
"""Demo devices and the min/max thresholds of their temperature."""
ONLINE = ("greenhouse-north", "cold-store", "boiler-room")
HISTORY = 72
"""Readings per device, one every five minutes over the last six hours."""


@dataclass(frozen=True)
class Shot:
    """One picture: the file name, the page (under the organization's console URL) and what it shows."""

    name: str
    path: str
    caption: str
    viewport: str = "desktop"


SHOTS = (
    Shot("overview", "", "Overview: clients, message rates, ingest, open alerts, updating live"),
    Shot("devices", "/devices", "Devices: search, status, battery and signal, paging"),
    Shot("device", "/devices/{device}", "A device: status, tokens, commands, alerts and rejected messages"),
    Shot("live", "/live", "Live messages: follow a topic filter, publish"),
    Shot("mqtt-tokens", "/mqtt-tokens", "MQTT API tokens: filters, expiry, last use, revoke"),
    Shot("definitions", "/devices/{device}/definitions", "A device's telemetry definitions and thresholds"),
    Shot("products", "/products", "Integrations: products"),
    Shot("product", "/products/{product}", "A product: outbound MQTT configuration, Test connection, status"),
    Shot("broker", "/broker", "Broker: $SYS figures live, connected clients with their subscriptions, kick"),
    Shot("users", "/users", "Users: roles, add a user, change a role, remove"),
    Shot("devices-phone", "/devices", "The device list at a phone's width", "phone"),
)


@dataclass
class Fleet:
    """The demo organization, its busiest device and the devices kept online while the pictures are taken."""

    org: str
    device: str
    product: str
    clients: dict[str, paho.Client]
    """Device id → its connection."""


def _connect(port: int, device_id: str, token: str) -> paho.Client:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"demo-{device_id[:8]}")
    client.username_pw_set(device_id, token)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def _publish_history(
    client: paho.Client, device_id: str, definition: int, limits: tuple[float, float], battery: int
) -> None:
    low, high = limits
    now = time.time()
    for n in range(HISTORY):
        middle, swing = (low + high) / 2, (high - low) / 3
        value = round(middle + swing * math.sin(n / 9) + (swing * 0.8 if n == HISTORY - 3 else 0), 2)
        reading = {"value": value, "telemetryDataId": definition, "timestamp": now - (HISTORY - n) * 300}
        client.publish(f"devices/{device_id}/datastream", json.dumps(reading), qos=1).wait_for_publish(10)
    status = {"status": "online", "metadata": {"battery": battery, "signal": -40 - battery // 4}}
    client.publish(f"devices/{device_id}/status", json.dumps(status), qos=1).wait_for_publish(10)


async def make_fleet(hub: LocalHub, org: str) -> Fleet:
    """Create the demo devices through the API and have them publish over MQTT."""
    clients: dict[str, paho.Client] = {}
    first = ""
    for n, (name, limits) in enumerate(FLEET.items()):
        created = await hub.client.post(f"/api/v1/organizations/{org}/devices", json={"name": name})
        device_id = str(created.json()["id"])
        first = first or device_id
        tokens = f"/api/v1/organizations/{org}/devices/{device_id}/tokens"
        token = str((await hub.client.post(tokens, json={"name": "firmware"})).json()["token"])
        definition = await hub.client.post(
            f"/api/v1/devices/{device_id}/telemetry-definitions",
            json={"key": "temperature", "unit": "C", "minThreshold": limits[0], "maxThreshold": limits[1]},
        )
        client = await asyncio.to_thread(_connect, hub.mqtt_port, device_id, token)
        await asyncio.to_thread(
            _publish_history, client, device_id, int(definition.json()["data"]["id"]), limits, 95 - 17 * n
        )
        if name in ONLINE:
            clients[device_id] = client
        else:
            await asyncio.to_thread(_close, client)
    created = await hub.client.post(
        f"/api/v1/organizations/{org}/mqtt-tokens",
        json={"name": "dashboard", "permissions": {"subscribe": ["devices/+/datastream"], "publish": []}},
    )
    created.raise_for_status()
    return Fleet(org, first, await _integration(hub, org), clients)


async def _integration(hub: LocalHub, org: str) -> str:
    """A product whose connector follows the hub's own broker (as it would a partner's) with one subscription."""
    product = await hub.client.post("/api/v1/products", json={"name": "Line 3 events", "organization_id": org})
    product.raise_for_status()
    product_id = str(product.json()["id"])
    token = await hub.client.post(
        f"/api/v1/organizations/{org}/mqtt-tokens",
        json={"name": "line 3 connector", "permissions": {"subscribe": ["factory/#"], "publish": []}},
    )
    secret = str(token.json()["token"])
    config = {
        "broker": {"host": "127.0.0.1", "port": hub.mqtt_port, "username": secret, "password": secret},
        "topics": {"prefix": "factory", "pattern": "{line}/events", "qos": 1},
    }
    (await hub.client.put(f"/api/v1/products/{product_id}/mqtt-config", json=config)).raise_for_status()
    subscription = {
        "name": "overheat",
        "variables": {"line": "line-3"},
        "description": "Store overheating reports",
        "actions": [{"type": "store"}],
    }
    subscriptions = f"/api/v1/products/{product_id}/mqtt-config/subscriptions"
    (await hub.client.post(subscriptions, json=subscription)).raise_for_status()
    return product_id


def _close(client: paho.Client) -> None:
    client.disconnect()
    client.loop_stop()


async def _settle(page: Page) -> None:
    await page.wait_for_load_state("networkidle")
    await page.wait_for_timeout(600)  # live figures and charts draw just after the page loads


async def photograph(tab: ConsoleTab, fleet: Fleet, shot: Shot, out: Path) -> Path:
    """Open the shot's page and save it as ``<out>/<name>.png``."""
    page = tab.page
    await page.goto(tab.url(f"/ui/orgs/{fleet.org}" + shot.path.format(device=fleet.device, product=fleet.product)))
    await _settle(page)
    if shot.name == "live":
        await page.get_by_role("button", name="Subscribe").click()
        await asyncio.to_thread(_publish_live, fleet)
        await _settle(page)
    path = out / f"{shot.name}.png"
    await page.screenshot(path=str(path), full_page=shot.viewport == "phone")
    return path


def _publish_live(fleet: Fleet) -> None:
    for n, (device_id, client) in enumerate(fleet.clients.items()):
        status = {"status": "online", "metadata": {"battery": 80 - n, "signal": -48 - n}}
        client.publish(f"devices/{device_id}/status", json.dumps(status), qos=1).wait_for_publish(10)


@asynccontextmanager
async def demo_hub(workdir: Path) -> AsyncIterator[LocalHub]:
    """A hub on SQLite in ``workdir``, every port ephemeral."""
    async with serve_in_process(hub_settings(workdir, outbound_allow="127.0.0.1")) as hub:
        yield hub


async def take(out: Path) -> list[Path]:
    """Serve a demo hub, photograph every shot into ``out``, and return the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="mqtthub-screenshots-") as directory:
        async with AsyncExitStack() as stack:
            hub = await stack.enter_async_context(demo_hub(Path(directory)))
            browser = await stack.enter_async_context(chromium())
            fleet: Fleet | None = None
            try:
                for viewport in ("desktop", "phone"):
                    tab = await stack.enter_async_context(console_tab(browser, hub.http_url, viewport))
                    await tab.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
                    if fleet is None:
                        fleet = await make_fleet(hub, tab.page.url.rsplit("/", 1)[1])
                    for shot in SHOTS:
                        if shot.viewport == viewport:
                            written.append(await photograph(tab, fleet, shot, out))
                    tab.assert_clean()
            finally:
                for client in fleet.clients.values() if fleet else []:
                    await asyncio.to_thread(_close, client)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=OUT, help="directory the PNG files are written to")
    args = parser.parse_args(argv)
    for path in asyncio.run(take(args.out)):
        print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
