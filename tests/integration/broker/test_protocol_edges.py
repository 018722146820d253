"""Protocol edges checked byte for byte over real sockets: refused protocol versions and keep alive."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from mqtthub.broker.hooks import ConnectInfo, Principal
from mqtthub.mqtt.packets import Connack, Pingresp, Publish
from mqtthub.mqtt.reason_codes import ReasonCode

from .support import WAIT, FakeAuth, RawClient, disconnect_codes, running_broker


async def read_until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the broker sends until it closes the connection."""
    return await asyncio.wait_for(reader.read(), WAIT)


@pytest.mark.parametrize(
    ("connect", "answer"),
    [
        # Unknown level 6: CONNACK return code 1 in the 3.1.1 layout [MQTT-3.1.2-2].
        ("10 0c 0004 4d515454 06 02 003c 0000", "20 02 00 01"),
        # Level 4 with protocol name "MQTX": the same.
        ("10 0c 0004 4d515458 04 02 003c 0000", "20 02 00 01"),
        # Level 3 without its "MQIsdp" name.
        ("10 0c 0004 4d515454 03 02 003c 0000", "20 02 00 01"),
    ],
    ids=["level-6", "level-4-wrong-name", "level-3-wrong-name"],
)
async def test_unsupported_protocol_gets_connack_1(connect: str, answer: str) -> None:
    async with running_broker() as broker:
        reader, writer = await asyncio.open_connection(*broker.addresses["tcp"])
        writer.write(bytes.fromhex(connect))
        assert await read_until_closed(reader) == bytes.fromhex(answer)
        writer.close()
        assert broker.stats().protocol_errors == 1
        assert broker.stats().clients_total == 0


async def test_level_5_with_wrong_name_gets_connack_0x84() -> None:
    async with running_broker() as broker:
        client = await RawClient.open(broker.addresses["tcp"])
        client.send_bytes(bytes.fromhex("10 0d 0004 4d515458 05 02 003c 00 0000"))
        (connack,) = await client.closed()
        assert isinstance(connack, Connack)
        assert connack.reason_code == 0x84
        assert connack.properties is not None
        assert connack.properties.reason_string


async def test_malformed_v5_connect_is_told_why() -> None:
    async with running_broker() as broker:
        client = await RawClient.open(broker.addresses["tcp"])
        client.send_bytes(bytes.fromhex("10 0d 0004 4d515454 05 03 003c 00 0000"))  # reserved flag set
        (connack,) = await client.closed()
        assert isinstance(connack, Connack)
        assert connack.reason_code == 0x81


async def test_malformed_v311_connect_is_closed_without_connack() -> None:
    async with running_broker() as broker:
        reader, writer = await asyncio.open_connection(*broker.addresses["tcp"])
        writer.write(bytes.fromhex("10 0c 0004 4d515454 04 03 003c 0000"))  # reserved flag set
        assert await read_until_closed(reader) == b""  # [MQTT-3.1.4-1]
        writer.close()


async def test_trickled_packet_does_not_keep_the_connection_alive() -> None:
    """Keep alive counts whole control packets [MQTT-3.1.2-24]: a byte every 0.2 s is not one."""
    async with running_broker() as broker:
        client = await RawClient.open(broker.addresses["tcp"])
        await client.connect("trickle", keep_alive=1)
        wire = bytes.fromhex("30 64 0005 736c6f7770 00") + b"x" * 92  # a 100-byte PUBLISH, 20 s at this pace
        started = time.monotonic()

        async def trickle() -> None:
            for byte in wire:
                client.send_bytes(bytes((byte,)))
                await asyncio.sleep(0.2)

        sender = asyncio.create_task(trickle())
        try:
            received = await client.closed()
        finally:
            sender.cancel()
        elapsed = time.monotonic() - started
        assert disconnect_codes(received) == [0x8D]
        assert elapsed < 10  # 1.5 s allowed, then the next housekeeping pass; far below the 20 s trickle
        assert broker.stats().keepalive_timeouts == 1
        assert broker.stats().messages_received == 0


async def test_whole_packets_keep_the_connection_alive() -> None:
    async with running_broker() as broker:
        client = await RawClient.open(broker.addresses["tcp"])
        await client.connect("pinger", keep_alive=1)
        for _ in range(8):  # 3.2 s, more than twice 1.5 times the keep alive
            client.send_bytes(b"\xc0\x00")
            assert isinstance(await client.receive(), Pingresp)
            await asyncio.sleep(0.4)
        client.send(Publish("alive", b"still here"))
        client.send_bytes(b"\xc0\x00")
        assert isinstance(await client.receive(), Pingresp)
        assert broker.stats().keepalive_timeouts == 0
        await client.close()


class _DownAuth(FakeAuth):
    """An authenticator whose backing store is down: every CONNECT fails the same way."""

    async def authenticate(self, info: ConnectInfo) -> Principal:
        raise ConnectionRefusedError("the database is down")


async def test_a_failing_authenticator_refuses_with_server_unavailable_and_logs_one_episode(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="mqtthub.broker.connect_handler"):
        async with running_broker(_DownAuth()) as broker:
            for number in range(20):
                client = await RawClient.open(broker.addresses["tcp"])
                connack = await client.connect(f"storm-{number}")
                assert connack.reason_code == ReasonCode.SERVER_UNAVAILABLE
    failures = [record for record in caplog.records if "authenticator failed" in record.getMessage()]
    assert len(failures) == 1, [record.getMessage() for record in failures]
    assert failures[0].exc_info is not None  # the first of the episode carries the traceback
