"""A paho-mqtt client driven from async tests: paho runs its own thread, the test awaits its events.

The broker under test may share the test's event loop, so nothing here blocks the loop:
every wait goes through :func:`asyncio.to_thread`.
"""

from __future__ import annotations

import asyncio
import queue
import ssl
import threading
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

WAIT = 10.0  # generous: only ever reached when something is wrong


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool


@dataclass
class PahoClient:
    """One paho client with its connection result, received messages and disconnection signal."""

    client: mqtt.Client
    connack: queue.Queue[int] = field(default_factory=queue.Queue)
    subacks: queue.Queue[list[int]] = field(default_factory=queue.Queue)
    messages: queue.Queue[Received] = field(default_factory=queue.Queue)
    disconnected: threading.Event = field(default_factory=threading.Event)

    async def subscribe(self, topic_filter: str, qos: int = 1) -> list[int]:
        """Subscribe and return the SUBACK codes."""
        self.client.subscribe(topic_filter, qos)
        return await asyncio.to_thread(self.subacks.get, True, WAIT)

    async def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        """Publish and wait until paho has handed it over (PUBACK for QoS 1)."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        await asyncio.to_thread(info.wait_for_publish, WAIT)

    async def next_message(self, timeout: float = WAIT) -> Received:
        """The next message received, or ``queue.Empty``."""
        return await asyncio.to_thread(self.messages.get, True, timeout)

    async def wait_disconnected(self, timeout: float = WAIT) -> bool:
        """Whether the broker closed the connection within ``timeout``."""
        return await asyncio.to_thread(self.disconnected.wait, timeout)

    def close(self) -> None:
        """Disconnect and stop paho's thread."""
        self.client.disconnect()
        self.client.loop_stop()


def _code(value: Any) -> int:
    if isinstance(value, ReasonCode):
        return int(value.value)
    return int(value)


async def connect(
    port: int,
    username: str | None = None,
    password: str | None = None,
    *,
    protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv311,
    transport: str = "tcp",
    tls: ssl.SSLContext | None = None,
    client_id: str = "",
    host: str = "127.0.0.1",
) -> tuple[int, PahoClient]:
    """Connect a client; return the CONNACK code (3.1.1 return code or 5.0 reason code) and the client.

    A refused client is already stopped; an accepted one must be closed by the caller.
    """
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=protocol,
        transport="websockets" if transport == "websockets" else "tcp",
        reconnect_on_failure=False,
    )
    wrapper = PahoClient(client)
    if transport == "websockets":
        client.ws_set_options(path="/mqtt")
    if username is not None:
        client.username_pw_set(username, password)
    if tls is not None:
        client.tls_set_context(tls)

    def on_connect(_c: mqtt.Client, _u: Any, _flags: Any, reason: Any, _p: Any) -> None:
        code = _code(reason)
        if protocol != MQTTProtocolVersion.MQTTv5 and isinstance(reason, ReasonCode):
            # paho reports 3.1.1 return codes as 5.0 reason codes; map back the two refusals that matter here.
            code = {0: 0, 0x86: 4, 0x87: 5, 0x88: 3, 0x85: 2, 0x84: 1}.get(code, code)
        wrapper.connack.put(code)

    def on_subscribe(_c: mqtt.Client, _u: Any, _mid: int, codes: list[Any], _p: Any) -> None:
        wrapper.subacks.put([_code(code) for code in codes])

    def on_message(_c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        wrapper.messages.put(Received(message.topic, bytes(message.payload), bool(message.retain)))

    def on_disconnect(_c: mqtt.Client, _u: Any, _flags: Any, _reason: Any, _p: Any) -> None:
        wrapper.disconnected.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.on_disconnect = on_disconnect
    await asyncio.to_thread(client.connect, host, port, 30)
    client.loop_start()
    try:
        code = await asyncio.to_thread(wrapper.connack.get, True, WAIT)
    except queue.Empty:
        wrapper.close()
        raise AssertionError("no CONNACK") from None
    if code != 0:
        client.loop_stop()
    return code, wrapper
