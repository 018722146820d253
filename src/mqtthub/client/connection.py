"""Outbound MQTT connections with paho-mqtt: options, one connection attempt, CONNACK codes.

Used by the standalone listener and by the hub's integration connectors. A connection
attempt either returns a paho client whose network thread is running and whose CONNACK
was a success, or raises :class:`ConnectRefused` (a CONNACK failure, with the 3.1.1
return code or the MQTT 5 reason code) or :class:`OSError` (socket, TLS, timeout).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from mqtthub.client.tls import TLSOptions, create_ssl_context

#: MQTT 3.1.1 CONNACK return codes [MQTT-3.2.2.3] and what they mean.
CONNACK_CODES: dict[int, str] = {
    0: "Connected successfully",
    1: "Incorrect protocol version",
    2: "Invalid client identifier",
    3: "Server unavailable",
    4: "Bad username or password",
    5: "Not authorized",
}

# paho reports 3.1.1 return codes as the equivalent MQTT 5 reason codes; this maps them back.
_V5_TO_V311 = {0: 0, 0x84: 1, 0x85: 2, 0x88: 3, 0x86: 4, 0x87: 5}

Protocol = Literal["3.1.1", "5.0"]
Transport = Literal["tcp", "websockets"]


class ConnectRefused(Exception):
    """The broker answered CONNECT with a failure.

    Attributes:
        code: The 3.1.1 return code (1-5), or the MQTT 5 reason code (0x80 and above).
        details: What the code means.
    """

    def __init__(self, code: int, details: str) -> None:
        super().__init__(f"Connection failed with code {code}")
        self.code = code
        self.details = details


@dataclass(frozen=True, slots=True, repr=False)
class ConnectionOptions:
    """Where and how to connect. ``repr`` never shows the password or key material."""

    host: str
    port: int = 1883
    protocol: Protocol = "3.1.1"
    transport: Transport = "tcp"
    ws_path: str = "/mqtt"
    tls: TLSOptions | None = None
    username: str | None = None
    password: str | None = None
    client_id: str = ""
    keep_alive: int = 60
    clean_session: bool = True
    connect_timeout: float = 10.0
    address: str | None = None
    """Connect to this IP address instead of resolving ``host`` (TLS and WebSocket still use ``host``)."""

    def __repr__(self) -> str:
        scheme = ("wss" if self.tls else "ws") if self.transport == "websockets" else ("mqtts" if self.tls else "mqtt")
        return (
            f"ConnectionOptions({scheme}://{self.host}:{self.port}, mqtt {self.protocol}, client_id={self.client_id!r})"
        )

    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> ConnectionOptions:
        """Options from ``mqtt://``, ``mqtts://``, ``ws://`` or ``wss://`` URL (user info and path honoured).

        Raises:
            ValueError: an unknown scheme or no host.
        """
        parts = urlsplit(url)
        defaults = {"mqtt": ("tcp", False, 1883), "mqtts": ("tcp", True, 8883), "ws": ("websockets", False, 80)}
        defaults["wss"] = ("websockets", True, 443)
        if parts.scheme not in defaults or not parts.hostname:
            raise ValueError(f"not an MQTT URL (mqtt://, mqtts://, ws://, wss://): {url!r}")
        transport, secure, port = defaults[parts.scheme]
        values: dict[str, Any] = {
            "host": parts.hostname,
            "port": parts.port or port,
            "transport": transport,
            "ws_path": parts.path or "/mqtt",
            "tls": TLSOptions() if secure else None,
            "username": unquote(parts.username) if parts.username else None,
            "password": unquote(parts.password) if parts.password else None,
        }
        values.update(overrides)
        return cls(**values)


@dataclass(slots=True)
class Connected:
    """A connected paho client and what the broker said in its CONNACK."""

    client: paho.Client
    protocol: Protocol
    max_qos: int | None
    latency_ms: float


class _Client(paho.Client):
    """paho's client, remembering a CONNACK refusal that paho handles without telling ``on_connect``.

    With ``reconnect_on_failure=False``, paho answers a 3.1.1 CONNACK 1 (unacceptable protocol version) or 2 (an
    empty client id refused) by closing with a protocol error instead of calling ``on_connect``; the broker's own
    answer would be lost and a caller would only see a close, or wait for a CONNACK that already came.
    """

    refused_code: int | None = None

    def _handle_connack(self) -> MQTTErrorCode:
        result = super()._handle_connack()
        packet = self._in_packet.get("packet", b"")
        if result == MQTTErrorCode.MQTT_ERR_PROTOCOL and len(packet) >= 2 and packet[1] != 0:
            self.refused_code = packet[1]
        return result


def build_client(options: ConnectionOptions) -> paho.Client:
    """A paho client configured from ``options`` (not connected; paho never reconnects by itself)."""
    client = _Client(
        CallbackAPIVersion.VERSION2,
        client_id=options.client_id,
        clean_session=options.clean_session if options.protocol == "3.1.1" else None,
        protocol=paho.MQTTv5 if options.protocol == "5.0" else paho.MQTTv311,
        transport=options.transport,
        reconnect_on_failure=False,
    )
    if options.transport == "websockets":
        client.ws_set_options(path=options.ws_path)
    if options.tls is not None:
        client.tls_set_context(create_ssl_context(options.tls))
        client.tls_insecure_set(not options.tls.verify_cert)
    if options.username is not None:
        client.username_pw_set(options.username, options.password)
    client.connect_timeout = options.connect_timeout
    return client


def reason_code_of(reason: ReasonCode | int, protocol: Protocol) -> int:
    """The number to report for a CONNACK reason: the 3.1.1 return code, or the MQTT 5 reason code."""
    value = reason.value if isinstance(reason, ReasonCode) else int(reason)
    if protocol == "3.1.1":
        return _V5_TO_V311.get(value, value)
    return value


def describe_code(code: int, reason: ReasonCode | int | None = None) -> str:
    """What a CONNACK code means (the documented table for 1-5, the MQTT 5 reason name otherwise)."""
    if code in CONNACK_CODES:
        return CONNACK_CODES[code]
    if isinstance(reason, ReasonCode):
        return str(reason.getName())
    return f"Reason code 0x{code:02X}"


def connect(options: ConnectionOptions, configure: Callable[[paho.Client], None] | None = None) -> Connected:
    """Connect and wait for a successful CONNACK; blocking (run it in a thread from asyncio).

    ``configure`` installs callbacks (``on_message``, ``on_disconnect``, …) before the
    network thread starts, so nothing that arrives right after CONNACK is missed.

    Raises:
        ConnectRefused: the broker refused the connection.
        OSError: the broker cannot be reached, TLS failed, closed the connection before its CONNACK, or no CONNACK
            came in time.
    """
    client = build_client(options)
    answered = threading.Event()
    outcome: dict[str, Any] = {}

    def on_connect(
        _client: paho.Client, _userdata: Any, _flags: Any, reason: ReasonCode, properties: Properties | None
    ) -> None:
        outcome["reason"] = reason
        outcome["properties"] = properties
        answered.set()

    def on_disconnect(*_args: Any) -> None:
        answered.set()  # closed before on_connect: refused in a way paho keeps to itself, or dropped

    if configure is not None:
        configure(client)
    chained_connect = client.on_connect
    client.on_connect = on_connect if chained_connect is None else _chain(on_connect, chained_connect)
    chained_disconnect = client.on_disconnect
    client.on_disconnect = on_disconnect if chained_disconnect is None else _chain(on_disconnect, chained_disconnect)
    started = time.monotonic()
    if options.protocol == "5.0":
        client.connect(options.host, options.port, keepalive=options.keep_alive, clean_start=options.clean_session)
    else:
        client.connect(options.host, options.port, keepalive=options.keep_alive)
    client.loop_start()
    if not answered.wait(options.connect_timeout):
        close_client(client)
        raise TimeoutError(f"no CONNACK within {options.connect_timeout:g} s")
    latency_ms = (time.monotonic() - started) * 1000
    if "reason" not in outcome:
        close_client(client)
        refused = getattr(client, "refused_code", None)
        if refused is not None:
            raise ConnectRefused(refused, describe_code(refused))
        raise ConnectionError("the broker closed the connection before its CONNACK")
    reason = outcome["reason"]
    if reason.is_failure:
        close_client(client)
        code = reason_code_of(reason, options.protocol)
        raise ConnectRefused(code, describe_code(code, reason))
    max_qos: int | None = None
    if options.protocol == "5.0":
        max_qos = int(getattr(outcome["properties"], "MaximumQoS", 2))
    return Connected(client=client, protocol=options.protocol, max_qos=max_qos, latency_ms=latency_ms)


def _chain(first: Callable[..., None], second: Callable[..., None]) -> Callable[..., None]:
    def both(*args: Any) -> None:
        first(*args)
        second(*args)

    return both


def close_client(client: paho.Client) -> None:
    """Disconnect (if connected) and stop the network thread; blocking."""
    with contextlib.suppress(OSError, ValueError):  # the socket may already be gone
        client.disconnect()
    client.loop_stop()
