"""Every listener kind with third-party clients: paho-mqtt (TCP, TLS with client certificates, WebSocket,
secure WebSocket; 3.1.1 and 5.0) and Debian's mosquitto_pub / mosquitto_sub."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import threading
from collections.abc import AsyncIterator
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from mqtthub.broker import Broker, ListenerConfig
from mqtthub.mqtt.codec import encode
from mqtthub.mqtt.packets import PROTOCOL_V311, Connect
from tests.conftest import require

from .support import WAIT, Certificates, FakeAuth, eventually, make_certificates, running_broker


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def auth() -> FakeAuth:
    return FakeAuth()


@pytest.fixture
async def broker(certificates: Certificates, auth: FakeAuth) -> AsyncIterator[Broker]:
    tls: dict[str, Any] = {
        "certfile": certificates.server_cert,
        "keyfile": certificates.server_key,
        "cafile": certificates.ca,
    }
    listeners = (
        ListenerConfig(name="tcp", port=0),
        ListenerConfig(name="tls", kind="tls", port=0, require_client_cert=True, **tls),
        ListenerConfig(name="ws", kind="ws", port=0),
        ListenerConfig(name="wss", kind="wss", port=0, **tls),
    )
    async with running_broker(auth, listeners=listeners) as broker:
        yield broker


class PahoClient:
    """A paho client running its network loop in paho's thread; results are awaited by polling."""

    def __init__(self, client_id: str, protocol: MQTTProtocolVersion, transport: str = "tcp") -> None:
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=protocol,
            transport=transport,  # type: ignore[arg-type]
        )
        if transport == "websockets":
            self.client.ws_set_options(path="/mqtt")
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.messages: list[paho.MQTTMessage] = []
        self.client.on_connect = lambda *args: self.connected.set()
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.client.on_message = lambda _client, _userdata, message: self.messages.append(message)

    def tls(self, certificates: Certificates, *, with_client_cert: bool) -> None:
        self.client.tls_set(
            ca_certs=str(certificates.ca),
            certfile=str(certificates.client_cert) if with_client_cert else None,
            keyfile=str(certificates.client_key) if with_client_cert else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )

    async def start(self, address: tuple[str, int]) -> None:
        await asyncio.to_thread(self.client.connect, *address)
        self.client.loop_start()
        await eventually(self.connected.is_set)

    async def subscribe(self, topic: str, qos: int) -> None:
        self.client.subscribe(topic, qos)
        await eventually(self.subscribed.is_set)

    async def stop(self) -> None:
        self.client.disconnect()
        await asyncio.to_thread(self.client.loop_stop)


@pytest.mark.parametrize("listener", ["tcp", "tls", "ws", "wss"])
@pytest.mark.parametrize("protocol", [MQTTProtocolVersion.MQTTv311, MQTTProtocolVersion.MQTTv5])
async def test_paho_roundtrip(
    broker: Broker, certificates: Certificates, listener: str, protocol: MQTTProtocolVersion
) -> None:
    transport = "websockets" if listener in ("ws", "wss") else "tcp"
    clients = [PahoClient(f"{listener}-{name}", protocol, transport) for name in ("sub", "pub")]
    for client in clients:
        if listener in ("tls", "wss"):
            client.tls(certificates, with_client_cert=listener == "tls")
        await client.start(broker.addresses[listener])
    sub, pub = clients
    await sub.subscribe("t/#", 2)
    for qos in (0, 1, 2):
        pub.client.publish(f"t/{qos}", f"over {listener}".encode(), qos=qos)
    await eventually(lambda: len(sub.messages) == 3)
    assert sorted((m.topic, m.qos, m.payload) for m in sub.messages) == [
        (f"t/{qos}", qos, f"over {listener}".encode()) for qos in (0, 1, 2)
    ]
    for client in clients:
        await client.stop()


async def test_tls_client_certificate_reaches_authenticator(
    broker: Broker, certificates: Certificates, auth: FakeAuth
) -> None:
    client = PahoClient("cert-client", MQTTProtocolVersion.MQTTv311)
    client.tls(certificates, with_client_cert=True)
    await client.start(broker.addresses["tls"])
    await client.stop()
    info = auth.infos[-1]
    assert info.listener == "tls"
    assert info.certificate_cn == "device-1"
    assert info.certificate_serial == certificates.client_serial
    assert info.certificate_subject is not None
    assert "commonName=device-1" in info.certificate_subject


async def test_tls_without_client_certificate_is_rejected(broker: Broker, certificates: Certificates) -> None:
    context = ssl.create_default_context(cafile=str(certificates.ca))
    with pytest.raises((ssl.SSLError, ConnectionResetError, EOFError)):
        await _connect_over_tls(broker.addresses["tls"], context)


async def _connect_over_tls(address: tuple[str, int], context: ssl.SSLContext) -> None:
    reader, writer = await asyncio.open_connection(*address, ssl=context)
    writer.write(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00")
    data = await asyncio.wait_for(reader.read(4), WAIT)
    writer.close()
    if not data:
        raise EOFError("closed by the broker")


@pytest.mark.parametrize("offered", [["mqtt"], ["mqttv3.1"], None])
async def test_websocket_subprotocols(broker: Broker, offered: list[str] | None) -> None:
    from websockets.asyncio.client import connect

    host, port = broker.addresses["ws"]
    async with connect(f"ws://{host}:{port}/mqtt", subprotocols=offered) as ws:  # type: ignore[arg-type]
        assert ws.subprotocol == (offered[0] if offered else None)
        await ws.send(encode(Connect("ws-raw"), PROTOCOL_V311))
        assert await asyncio.wait_for(ws.recv(), WAIT) == b"\x20\x02\x00\x00"


@pytest.mark.parametrize("path", ["", "/", "/other/path?x=1"])
async def test_websocket_any_path_is_served(broker: Broker, path: str) -> None:
    """Browser examples connect to ``ws://host:port`` without ``/mqtt``; like Mosquitto, every path is MQTT."""
    from websockets.asyncio.client import connect

    host, port = broker.addresses["ws"]
    async with connect(f"ws://{host}:{port}{path}", subprotocols=["mqtt"]) as ws:  # type: ignore[list-item]
        await ws.send(encode(Connect("ws-any-path"), PROTOCOL_V311))
        assert await asyncio.wait_for(ws.recv(), WAIT) == b"\x20\x02\x00\x00"


@pytest.mark.parametrize("listener", ["tcp", "tls"])
@pytest.mark.parametrize("version", ["mqttv311", "mqttv5"])
async def test_mosquitto_clients(broker: Broker, certificates: Certificates, listener: str, version: str) -> None:
    require(shutil.which("mosquitto_sub") is not None, "mosquitto-clients (apt-get install mosquitto-clients)")
    host, port = broker.addresses[listener]
    common = ["-h", host, "-p", str(port), "-V", version]
    if listener == "tls":
        common += [
            "--cafile",
            str(certificates.ca),
            "--cert",
            str(certificates.client_cert),
            "--key",
            str(certificates.client_key),
        ]
    await _mosquitto_pub([*common, "-t", "retained/x", "-m", "kept", "-r", "-q", "1"])
    sub = await asyncio.create_subprocess_exec(
        "mosquitto_sub",
        *common,
        "-t",
        "retained/#",
        "-t",
        "live/#",
        "-q",
        "2",
        "-C",
        "2",
        "-v",
        stdout=asyncio.subprocess.PIPE,
    )
    await eventually(lambda: broker.stats().subscriptions >= 2)
    await _mosquitto_pub([*common, "-t", "live/y", "-m", "fresh", "-q", "2"])
    out, _ = await asyncio.wait_for(sub.communicate(), WAIT)
    assert out.decode().splitlines() == ["retained/x kept", "live/y fresh"]


async def _mosquitto_pub(args: list[str]) -> None:
    process = await asyncio.create_subprocess_exec("mosquitto_pub", *args)
    assert await asyncio.wait_for(process.wait(), WAIT) == 0
