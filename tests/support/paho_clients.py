"""A connected paho client (its own network thread) for a served hub's MQTT parameters."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.access import MqttParams

CONNECT_TIMEOUT = 30.0


def paho_client(
    params: MqttParams, on_message: Callable[[paho.MQTTMessage], None] | None = None, *, client_id: str | None = None
) -> paho.Client:
    """A paho client (MQTT 3.1.1) connected with ``params``, its network loop started; the caller stops it."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id or f"t-{time.monotonic_ns()}")
    if params.username is not None:
        client.username_pw_set(params.username, params.password)
    connected = threading.Event()
    client.on_connect = lambda c, u, f, reason, p: connected.set()
    if on_message is not None:
        client.on_message = lambda c, u, message: on_message(message)
    client.connect(params.host, params.port)
    client.loop_start()
    assert connected.wait(CONNECT_TIMEOUT), f"MQTT client did not connect to {params.host}:{params.port}"
    return client
