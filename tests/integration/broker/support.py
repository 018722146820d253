"""Test doubles and helpers for broker tests: hooks, certificates, a raw-bytes client, polling."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties as PahoProperties

from mqtthub.broker import Broker, BrokerConfig, ListenerConfig
from mqtthub.broker.hooks import Action, BrokerMessage, BrokerObserver, ConnectInfo, MessageSink, Principal
from mqtthub.broker.persistence import StateStore
from mqtthub.errors import AuthenticationRefused
from mqtthub.mqtt.codec import PacketReader, encode
from mqtthub.mqtt.packets import PROTOCOL_V5, Connack, Connect, Disconnect, Packet

WAIT = 10.0
"""Generous upper bound for anything the tests wait on."""


@dataclass
class FakeAuth:
    """Authenticator and authorizer driven by plain data."""

    refused: dict[str, int] = field(default_factory=dict)
    """username → reason code to refuse with."""
    mountpoints: dict[str, str] = field(default_factory=dict)
    expires_at: dict[str, float] = field(default_factory=dict)
    denied: set[tuple[Action, str]] = field(default_factory=set)
    """(action, topic) pairs refused; topics as the client sends them."""
    infos: list[ConnectInfo] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)
    """Principal ids the broker told the authenticator to forget."""
    authorize_calls: int = 0

    async def authenticate(self, info: ConnectInfo) -> Principal:
        self.infos.append(info)
        name = info.username or info.client_id
        if name in self.refused:
            raise AuthenticationRefused("refused by test", reason_code=self.refused[name])
        return Principal(
            id=f"user:{name}",
            kind="test",
            mountpoint=self.mountpoints.get(name, ""),
            expires_at=self.expires_at.get(name),
        )

    def admit(self, info: ConnectInfo) -> Awaitable[Principal]:
        return self.authenticate(info)

    def forget(self, principal_id: str) -> None:
        self.forgotten.append(principal_id)

    async def authorize(self, principal: Principal, action: Action, topic: str) -> bool:
        self.authorize_calls += 1
        return (action, topic) not in self.denied


class FutureAuth(FakeAuth):
    """Answers every CONNECT with a future resolved on a later pass of the event loop, as a batched lookup does."""

    def admit(self, info: ConnectInfo) -> Awaitable[Principal]:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Principal] = loop.create_future()
        decided = loop.create_task(self.authenticate(info))

        def settle(done: asyncio.Task[Principal]) -> None:
            loop.call_soon(answered, done)

        def answered(done: asyncio.Task[Principal]) -> None:
            if answer.done():
                return  # cancelled by a test
            error = done.exception()
            if error is not None:
                answer.set_exception(error)
            else:
                answer.set_result(done.result())

        decided.add_done_callback(settle)
        return answer


class HoldingSink:
    """A sink that resolves futures when the test says so."""

    def __init__(self) -> None:
        self.futures: list[asyncio.Future[int]] = []

    def offer(self, message: BrokerMessage) -> asyncio.Future[int] | None:
        if message.qos == 0:
            return None
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        return future


@dataclass
class RecordingObserver:
    """Remembers connection events."""

    events: list[tuple[str, str, str, bool]] = field(default_factory=list)

    def client_connected(self, client_id: str, principal: Principal) -> None:
        self.events.append(("connected", client_id, principal.id, True))

    def client_disconnected(self, client_id: str, principal: Principal, reason: str, *, graceful: bool) -> None:
        self.events.append(("disconnected", client_id, reason, graceful))

    def client_subscribed(self, client_id: str, principal: Principal, topic_filter: str) -> None:
        self.events.append(("subscribed", client_id, topic_filter, True))

    def message_restored(self, message: BrokerMessage) -> None:
        self.events.append(("restored", message.topic, message.payload.decode(), True))


@dataclass
class Certificates:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate, as PEM files."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    client_serial: int


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def make_certificates(directory: Path) -> Certificates:
    """Generate a throw-away PKI in ``directory``."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mqtthub test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )

    def issue(cn: str, *, server: bool) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name(
                    [
                        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mqtthub"),
                        x509.NameAttribute(NameOID.COMMON_NAME, cn),
                    ]
                )
            )
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        return builder.sign(ca_key, hashes.SHA256()), key

    server_cert, server_key = issue("localhost", server=True)
    client_cert, client_key = issue("device-1", server=False)
    paths = Certificates(
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
        client_serial=client_cert.serial_number,
    )
    paths.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths.server_cert.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    paths.client_cert.write_bytes(client_cert.public_bytes(serialization.Encoding.PEM))
    _write_key(paths.server_key, server_key)
    _write_key(paths.client_key, client_key)
    return paths


@asynccontextmanager
async def running_broker(
    auth: FakeAuth | None = None,
    *,
    listeners: tuple[ListenerConfig, ...] = (ListenerConfig(name="tcp", port=0),),
    sink: MessageSink | None = None,
    observer: BrokerObserver | None = None,
    state_store: StateStore | None = None,
    **limits: Any,
) -> AsyncIterator[Broker]:
    """A broker on ephemeral ports with test hooks; ``limits`` are :class:`BrokerConfig` fields."""
    auth = auth or FakeAuth()
    limits.setdefault("sys_interval", 0)
    limits.setdefault("housekeeping_interval", 0.1)
    config = BrokerConfig(listeners=listeners, **limits)
    async with Broker(
        config, authenticator=auth, authorizer=auth, sink=sink, observer=observer, state_store=state_store
    ) as broker:
        yield broker


async def eventually(condition: Callable[[], bool], timeout: float = WAIT) -> None:
    """Wait until ``condition()`` holds (polling), failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


class RawClient:
    """A byte-level MQTT client over plain asyncio streams, for protocol-violation tests."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, level: int) -> None:
        self.reader = reader
        self.writer = writer
        self.level = level
        self._parser = PacketReader(protocol_level=level)
        self._packets: list[Packet] = []

    @classmethod
    async def open(cls, address: tuple[str, int], level: int = PROTOCOL_V5) -> RawClient:
        reader, writer = await asyncio.open_connection(*address)
        return cls(reader, writer, level)

    async def connect(self, client_id: str = "raw", *, keep_alive: int = 60, **fields: Any) -> Connack:
        self.send(Connect(client_id, protocol_level=self.level, keep_alive=keep_alive, **fields))
        packet = await self.receive()
        assert isinstance(packet, Connack), packet
        return packet

    def send(self, packet: Packet) -> None:
        self.writer.write(encode(packet, self.level))

    def send_bytes(self, data: bytes) -> None:
        self.writer.write(data)

    async def receive(self, timeout: float = WAIT) -> Packet:
        """The next packet from the broker; raises EOFError when the broker closed the connection."""
        while not self._packets:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            if not data:
                raise EOFError("connection closed by the broker")
            self._packets.extend(self._parser.feed(data))
        return self._packets.pop(0)

    async def closed(self, timeout: float = WAIT) -> list[Packet]:
        """Read until the broker closes the connection; return what came before."""
        received: list[Packet] = []
        try:
            while True:
                received.append(await self.receive(timeout))
        except (EOFError, ConnectionResetError):
            await self.close()
            return received

    async def close(self) -> None:
        self.writer.close()
        with suppress(ConnectionResetError, BrokenPipeError):
            await self.writer.wait_closed()


def paho_props(packet_type: int, **values: Any) -> PahoProperties:
    """paho/aiomqtt properties for one packet type, set from keyword arguments (paho's names)."""
    props = PahoProperties(packet_type)  # type: ignore[no-untyped-call]
    for name, value in values.items():
        setattr(props, name, value)
    return props


def collect(into: list[BrokerMessage]) -> Callable[[BrokerMessage], None]:
    """A local-subscription callback appending to a list."""
    return into.append


def disconnect_codes(packets: list[Packet]) -> list[int]:
    """Reason codes of the DISCONNECT packets among ``packets``."""
    return [packet.reason_code for packet in packets if isinstance(packet, Disconnect)]


class Paho:
    """A paho 2.x client running its network loop in paho's thread, recording what the broker answers."""

    def __init__(self, client_id: str, *, v5: bool = True, **connect_properties: Any) -> None:
        protocol = MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
        self._connect_properties = paho_props(PacketTypes.CONNECT, **connect_properties) if connect_properties else None
        self.connack: tuple[int, PahoProperties | None] | None = None
        self.acks: dict[int, int] = {}
        """Message id → reason code of its PUBACK/PUBCOMP (or of the PUBREC that ended it)."""
        self.disconnects: list[int] = []
        self.messages: list[paho.MQTTMessage] = []
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = lambda _client, _userdata, message: self.messages.append(message)

    def _on_connect(self, _c: paho.Client, _u: object, _f: object, reason: Any, props: Any) -> None:
        self.connack = (int(reason.value), props)

    def _on_publish(self, _c: paho.Client, _u: object, mid: int, reason: Any, _props: Any) -> None:
        self.acks[mid] = int(reason.value)

    def _on_disconnect(self, _c: paho.Client, _u: object, _f: object, reason: Any, _props: Any) -> None:
        self.disconnects.append(int(reason.value))

    async def start(self, address: tuple[str, int], keepalive: int = 60) -> None:
        """Connect and run the network loop; returns once CONNACK arrived."""
        await asyncio.to_thread(self.client.connect, *address, keepalive=keepalive, properties=self._connect_properties)
        self.client.loop_start()
        await eventually(lambda: self.connack is not None)

    async def stop(self) -> None:
        self.client.disconnect()
        await asyncio.to_thread(self.client.loop_stop)
