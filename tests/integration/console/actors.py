"""The actors of the console's browser tests: a device on paho, a device with a thresholded sensor, a member."""

from __future__ import annotations

import threading

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.served import LocalHub

MEMBER_EMAIL = "member@example.com"
MEMBER_PASSWORD = "member password 1"


class Device:
    """A device on paho (its own network thread), connected with its id and token."""

    def __init__(self, port: int, device_id: str, token: str) -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"console-{device_id[:8]}")
        self.client.username_pw_set(device_id, token)
        self.connected = threading.Event()
        self.client.on_connect = lambda client, userdata, flags, reason, properties: (
            self.connected.set() if not reason.is_failure else None
        )
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


async def new_device(hub: LocalHub, org: str, name: str) -> tuple[str, str, int]:
    """A device, one of its tokens and a ``temperature`` definition with thresholds 0 … 30."""
    devices = f"/api/v1/organizations/{org}/devices"
    device_id = (await hub.client.post(devices, json={"name": name})).json()["id"]
    token = (await hub.client.post(f"{devices}/{device_id}/tokens", json={})).json()["token"]
    definition = await hub.client.post(
        f"/api/v1/devices/{device_id}/telemetry-definitions",
        json={"key": "temperature", "name": "Temperature", "unit": "C", "minThreshold": 0, "maxThreshold": 30},
    )
    assert definition.status_code == 201, definition.text
    return device_id, token, int(definition.json()["data"]["id"])


async def add_member(hub: LocalHub, org: str) -> None:
    """Add the member account (role ``org_member``) to the organization."""
    body = {"email": MEMBER_EMAIL, "password": MEMBER_PASSWORD, "role": "org_member"}
    assert (await hub.client.post(f"/api/v1/organizations/{org}/users", json=body)).status_code == 201
