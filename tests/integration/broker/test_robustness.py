"""Misbehaving clients are closed (5.0: with a DISCONNECT reason) while everyone else keeps being served."""

from __future__ import annotations

import asyncio

import pytest

from mqtthub.broker.hooks import BrokerMessage
from mqtthub.mqtt.packets import PROTOCOL_V311, Connect, Publish, Subscribe, SubscriptionRequest

from .support import RawClient, collect, disconnect_codes, eventually, running_broker


async def test_malformed_packet_after_connect() -> None:
    async with running_broker() as broker:
        client = await RawClient.open(broker.addresses["tcp"])
        await client.connect("bad")
        client.send_bytes(b"\x00\x00")  # packet type 0 is reserved
        assert disconnect_codes(await client.closed()) == [0x81]
        assert broker.stats().protocol_errors == 1


async def test_oversized_packet() -> None:
    async with running_broker(max_packet_size=1024) as broker:
        client = await RawClient.open(broker.addresses["tcp"])
        await client.connect("big")
        client.send(Publish("big", b"x" * 4096))
        assert disconnect_codes(await client.closed()) == [0x95]


async def test_second_connect_is_a_protocol_error() -> None:
    async with running_broker() as broker:
        client = await RawClient.open(broker.addresses["tcp"])
        await client.connect("twice")
        client.send(Connect("twice", protocol_level=5))
        assert disconnect_codes(await client.closed()) == [0x82]


async def test_packet_before_connect_closes() -> None:
    async with running_broker() as broker:
        client = await RawClient.open(broker.addresses["tcp"], PROTOCOL_V311)
        client.send(Publish("early", b"x"))
        assert await client.closed() == []


async def test_silent_socket_closed_after_connect_timeout() -> None:
    async with running_broker(connect_timeout=0.3) as broker:
        reader, writer = await asyncio.open_connection(*broker.addresses["tcp"])
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        assert broker.stats().connect_timeouts == 1


async def test_connection_limit_spares_existing_clients() -> None:
    async with running_broker(max_connections=1) as broker:
        hub: list[BrokerMessage] = []
        broker.subscribe("ok/#", collect(hub))
        first = await RawClient.open(broker.addresses["tcp"])
        await first.connect("first")
        second = await RawClient.open(broker.addresses["tcp"])
        assert await second.closed() == []
        first.send(Publish("ok/1", b"still served"))
        await eventually(lambda: len(hub) == 1)
        assert broker.stats().connections_rejected == 1
        await first.close()


async def test_slow_subscriber_is_bounded_and_does_not_stall_others() -> None:
    async with running_broker(max_outbound_qos0=10, max_queued_messages=5, max_inflight=5) as broker:
        hub: list[BrokerMessage] = []
        broker.subscribe("flood/#", collect(hub))
        stalled = await RawClient.open(broker.addresses["tcp"], PROTOCOL_V311)
        await stalled.connect("stalled")
        stalled.send(Subscribe(1, [SubscriptionRequest("flood/#", 1)]))
        await stalled.receive()
        stalled.writer.transport.pause_reading()  # type: ignore[attr-defined]
        publisher = await RawClient.open(broker.addresses["tcp"], PROTOCOL_V311)
        await publisher.connect("publisher")
        payload = b"p" * 4096
        total = 3000
        for index in range(total):
            qos = index % 2
            publisher.send(Publish("flood/a", payload, qos=qos, packet_id=index + 1 if qos else None))
            if index % 100 == 0:
                await publisher.writer.drain()
        await eventually(lambda: len(hub) == total)
        stats = broker.stats()
        assert stats.qos0_dropped > 0
        assert stats.queue_dropped > 0
        await stalled.close()
        await publisher.close()


async def test_connection_rate_limit() -> None:
    async with running_broker(max_connection_rate=2) as broker:
        clients = [await RawClient.open(broker.addresses["tcp"], PROTOCOL_V311) for _ in range(4)]
        await eventually(lambda: broker.stats().connections_rejected >= 1)
        for client in clients:
            await client.close()


def test_runs_on_uvloop() -> None:
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> None:
        async with running_broker() as broker:
            subscriber = await RawClient.open(broker.addresses["tcp"], PROTOCOL_V311)
            await subscriber.connect("uv-sub")
            subscriber.send(Subscribe(1, [SubscriptionRequest("uv/#", 1)]))
            await subscriber.receive()
            await broker.publish("uv/1", b"fast", qos=1)
            packet = await subscriber.receive()
            assert isinstance(packet, Publish)
            assert packet.payload == b"fast"
            await subscriber.close()

    uvloop.run(scenario())
