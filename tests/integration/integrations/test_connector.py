"""The connector against a real Mosquitto: password, TLS (verify on/off), client certificates, WebSocket, restarts."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

import pytest

from mqtthub.client.connection import ConnectionOptions, Protocol
from mqtthub.client.tls import TLSOptions
from mqtthub.integrations.connector import Connector, InboundMessage
from mqtthub.integrations.status import ConnectionStatus
from tests.integration.integrations.conftest import publish, wait_until
from tests.integration.integrations.mosquitto import P12_PASSWORD, PASSWORD, USERNAME, Certificates, Mosquitto

TOPIC = "/v3/applications/ABC/business-events"


async def _receive(options: ConnectionOptions, broker: Mosquitto, count: int = 3) -> list[InboundMessage]:
    received: list[InboundMessage] = []

    async def handler(message: InboundMessage) -> None:
        received.append(message)

    status = ConnectionStatus(product_id="p", client_id=options.client_id)
    async with Connector(options, topics={TOPIC: 1}, handler=handler, status=status, reconnect_min=0.1):
        await wait_until(lambda: status.subscribed_topics_count == 1, what=f"subscription; status {status.as_dict()}")
        await asyncio.to_thread(publish, broker, TOPIC, [b'{"n": %d}' % index for index in range(count)])
        await wait_until(lambda: len(received) == count, what="messages")
        assert status.connected
        assert status.messages_received == count
        assert status.as_dict()["broker_info"] == {"version": options.protocol, "max_qos": status.max_qos}
    assert [message.payload for message in received] == [b'{"n": %d}' % index for index in range(count)]
    assert not status.connected
    return received


async def _first_error(options: ConnectionOptions) -> str:
    async def handler(message: InboundMessage) -> None:
        raise AssertionError("no message expected")

    status = ConnectionStatus(product_id="p", client_id="c")
    async with Connector(options, topics={TOPIC: 1}, handler=handler, status=status, reconnect_min=0.1):
        await wait_until(lambda: status.connection_error is not None, what="a connection error")
        assert not status.connected
    assert status.connection_error is not None
    return status.connection_error


@pytest.mark.parametrize("protocol", ["3.1.1", "5.0"])
async def test_password_auth_receives_messages_in_order(mosquitto: Mosquitto, protocol: Protocol) -> None:
    options = ConnectionOptions(
        "127.0.0.1", mosquitto.tcp_port, protocol=protocol, username=USERNAME, password=PASSWORD, client_id="pw"
    )
    await _receive(options, mosquitto)


async def test_wrong_password_is_reported_and_retried(mosquitto: Mosquitto) -> None:
    options = ConnectionOptions("127.0.0.1", mosquitto.tcp_port, username=USERNAME, password="nope", client_id="x")
    error = await _first_error(options)
    assert error == "Connection failed with code 5: Not authorized"


async def test_tls_with_the_test_ca(mosquitto: Mosquitto, pki: Certificates) -> None:
    tls = TLSOptions(verify_cert=True, ca_pem=pki.ca_pem)
    await _receive(ConnectionOptions("127.0.0.1", mosquitto.tls_port, tls=tls, client_id="tls"), mosquitto)


async def test_tls_verification_refuses_an_unknown_ca(mosquitto: Mosquitto, pki: Certificates) -> None:
    tls = TLSOptions(verify_cert=True, ca_pem=pki.other_ca_pem)
    error = await _first_error(ConnectionOptions("127.0.0.1", mosquitto.tls_port, tls=tls, client_id="bad-ca"))
    assert "CERTIFICATE_VERIFY_FAILED" in error


async def test_tls_without_verification_accepts_an_unknown_ca(mosquitto: Mosquitto) -> None:
    tls = TLSOptions(verify_cert=False)
    await _receive(ConnectionOptions("127.0.0.1", mosquitto.tls_port, tls=tls, client_id="noverify"), mosquitto)


async def test_client_certificate_as_pem(mosquitto: Mosquitto, pki: Certificates) -> None:
    tls = TLSOptions(ca_pem=pki.ca_pem, client_cert_pem=pki.client_cert_pem, client_key_pem=pki.client_key_pem)
    await _receive(ConnectionOptions("127.0.0.1", mosquitto.mtls_port, tls=tls, client_id="pem"), mosquitto)


async def test_client_certificate_as_pkcs12_leaves_no_key_file(mosquitto: Mosquitto, pki: Certificates) -> None:
    before = set(os.listdir(tempfile.gettempdir()))
    tls = TLSOptions(ca_pem=pki.ca_pem, pkcs12=pki.client_p12, pkcs12_password=P12_PASSWORD)
    await _receive(ConnectionOptions("127.0.0.1", mosquitto.mtls_port, tls=tls, client_id="p12"), mosquitto)
    left = {name for name in set(os.listdir(tempfile.gettempdir())) - before if name.startswith("mqtthub-tls-")}
    assert left == set()


async def test_mutual_tls_without_a_certificate_fails(mosquitto: Mosquitto, pki: Certificates) -> None:
    tls = TLSOptions(ca_pem=pki.ca_pem)
    error = await _first_error(ConnectionOptions("127.0.0.1", mosquitto.mtls_port, tls=tls, client_id="nocert"))
    assert error.startswith("Connection failed")


async def test_pkcs12_with_a_wrong_password_is_a_certificate_error(mosquitto: Mosquitto, pki: Certificates) -> None:
    tls = TLSOptions(ca_pem=pki.ca_pem, pkcs12=pki.client_p12, pkcs12_password="wrong")
    error = await _first_error(ConnectionOptions("127.0.0.1", mosquitto.mtls_port, tls=tls, client_id="p12bad"))
    assert error.startswith("Certificate error: the PKCS#12 bundle cannot be opened")


@pytest.mark.parametrize("protocol", ["3.1.1", "5.0"])
async def test_websocket(mosquitto: Mosquitto, protocol: Protocol) -> None:
    options = ConnectionOptions(
        "127.0.0.1", mosquitto.ws_port, transport="websockets", protocol=protocol, client_id="ws"
    )
    await _receive(options, mosquitto)


async def test_secure_websocket(mosquitto: Mosquitto, pki: Certificates) -> None:
    tls = TLSOptions(ca_pem=pki.ca_pem)
    options = ConnectionOptions("127.0.0.1", mosquitto.wss_port, transport="websockets", tls=tls, client_id="wss")
    await _receive(options, mosquitto)


async def test_broker_restart_is_reported_and_recovered(tmp_path: Path, mosquitto: Mosquitto) -> None:
    received: list[InboundMessage] = []

    async def handler(message: InboundMessage) -> None:
        received.append(message)

    options = ConnectionOptions("127.0.0.1", mosquitto.tcp_port, username=USERNAME, password=PASSWORD, client_id="r")
    status = ConnectionStatus(product_id="p", client_id="r")
    async with Connector(
        options, topics={TOPIC: 1}, handler=handler, status=status, reconnect_min=0.2, reconnect_max=1.0
    ):
        await wait_until(lambda: status.subscribed_topics_count == 1, what="subscription")
        await asyncio.to_thread(publish, mosquitto, TOPIC, [b"before"])
        await wait_until(lambda: len(received) == 1, what="first message")
        await asyncio.to_thread(mosquitto.stop)
        await wait_until(lambda: not status.connected, what="the disconnect")
        assert status.last_disconnected_at is not None
        await wait_until(lambda: status.connection_error is not None, what="an error")
        lost = status.connection_error
        await asyncio.to_thread(mosquitto.start)
        await wait_until(lambda: status.connected and status.subscribed_topics_count == 1, what="reconnection")
        await asyncio.to_thread(publish, mosquitto, TOPIC, [b"after"])
        await wait_until(lambda: len(received) == 2, what="message after restart")
    assert lost is not None
    assert lost.startswith(("Connection lost", "Connection failed", "Disconnected"))
    assert status.messages_received == 2
    kinds = [event.kind for event in status.history]
    assert kinds[0] == "connected"
    assert "disconnected" in kinds
    assert kinds[-1] == "disconnected"
    assert kinds.count("connected") == 2
