"""MQTT 5.0 details: will delay, disconnect with will, message expiry, shared hand-over, limits, public surface."""

from __future__ import annotations

import asyncio

import mqtthub.broker
from mqtthub.broker import Broker, BrokerHandle
from mqtthub.broker.hooks import BrokerMessage
from mqtthub.mqtt.packets import (
    Disconnect,
    Properties,
    Puback,
    Publish,
    Suback,
    Subscribe,
    SubscriptionRequest,
    Will,
)

from .support import RawClient, collect, disconnect_codes, eventually, running_broker


async def subscribe(client: RawClient, topic_filter: str, qos: int = 1) -> None:
    client.send(Subscribe(1, [SubscriptionRequest(topic_filter, qos)]))
    assert isinstance(await client.receive(), Suback)


async def test_disconnect_with_will_message_sends_the_will() -> None:
    async with running_broker() as broker:
        seen: list[BrokerMessage] = []
        broker.subscribe("w/#", collect(seen))
        client = await RawClient.open(broker.addresses["tcp"])
        await client.connect("w", will=Will("w/status", b"offline"))
        client.send(Disconnect(0x04))
        await client.closed()
        await eventually(lambda: len(seen) == 1)


async def test_will_delay_cancelled_by_reconnect_and_sent_otherwise() -> None:
    async with running_broker() as broker:
        seen: list[BrokerMessage] = []
        broker.subscribe("w/#", collect(seen))
        will = Will("w/delayed", b"gone", properties=Properties(will_delay_interval=1))
        expiry = Properties(session_expiry_interval=60)
        client = await RawClient.open(broker.addresses["tcp"])
        await client.connect("d", will=will, properties=expiry, clean_start=False)
        client.writer.transport.abort()
        await asyncio.sleep(0.3)
        back = await RawClient.open(broker.addresses["tcp"])
        connack = await back.connect("d", will=will, properties=expiry, clean_start=False)
        assert connack.session_present is True
        await asyncio.sleep(1.2)
        assert seen == []
        back.writer.transport.abort()
        await eventually(lambda: len(seen) == 1)
        assert seen[0].payload == b"gone"


async def test_expired_messages_are_not_delivered_from_the_queue() -> None:
    async with running_broker() as broker:
        client = await RawClient.open(broker.addresses["tcp"])
        await client.connect("late", clean_start=False, properties=Properties(session_expiry_interval=60))
        await subscribe(client, "exp/#")
        await client.close()
        await eventually(lambda: broker.stats().clients_connected == 0)
        await broker.publish("exp/short", b"stale", qos=1, properties=Properties(message_expiry_interval=1))
        await broker.publish("exp/long", b"fresh", qos=1, properties=Properties(message_expiry_interval=100))
        await asyncio.sleep(1.1)
        back = await RawClient.open(broker.addresses["tcp"])
        await back.connect("late", clean_start=False, properties=Properties(session_expiry_interval=60))
        packet = await back.receive()
        assert isinstance(packet, Publish)
        assert packet.payload == b"fresh"
        assert packet.properties is not None
        assert packet.properties.message_expiry_interval is not None
        assert packet.properties.message_expiry_interval <= 100
        assert broker.stats().expired_dropped == 1
        await back.close()


async def test_unacknowledged_shared_messages_go_to_another_member() -> None:
    async with running_broker() as broker:
        first = await RawClient.open(broker.addresses["tcp"])
        await first.connect("m1")
        await subscribe(first, "$share/g/jobs/#")
        second = await RawClient.open(broker.addresses["tcp"])
        await second.connect("m2")
        await subscribe(second, "$share/g/jobs/#")
        await broker.publish("jobs/1", b"one", qos=1)
        await broker.publish("jobs/2", b"two", qos=1)
        got_first = await first.receive()
        got_second = await second.receive()
        assert isinstance(got_first, Publish)
        assert isinstance(got_second, Publish)
        first.writer.transport.abort()  # leaves without acknowledging
        handed_over = await second.receive()
        assert isinstance(handed_over, Publish)
        assert handed_over.payload == got_first.payload
        second.send(Puback(handed_over.packet_id or 0))
        await second.close()


async def test_receive_maximum_exceeded() -> None:
    async with running_broker(receive_maximum=2) as broker:
        client = await RawClient.open(broker.addresses["tcp"])
        await client.connect("greedy")
        for packet_id in (1, 2, 3):
            client.send(Publish("q2/x", b"x", qos=2, packet_id=packet_id))
        received = await client.closed()
        assert disconnect_codes(received) == [0x93]


async def test_client_maximum_packet_size_is_respected() -> None:
    async with running_broker() as broker:
        client = await RawClient.open(broker.addresses["tcp"])
        await client.connect("small", properties=Properties(maximum_packet_size=64))
        await subscribe(client, "sz/#", qos=0)
        await broker.publish("sz/big", b"x" * 100)
        await broker.publish("sz/small", b"ok")
        packet = await client.receive()
        assert isinstance(packet, Publish)
        assert packet.payload == b"ok"
        assert broker.stats().oversize_dropped == 1
        await client.close()


async def test_public_surface() -> None:
    assert sorted(mqtthub.broker.__all__) == [
        "Broker",
        "BrokerConfig",
        "BrokerHandle",
        "BrokerState",
        "BrokerStats",
        "ListenerConfig",
    ]
    async with running_broker() as broker:
        handle: BrokerHandle = broker
        assert isinstance(handle, Broker)
        assert handle.stats().clients_connected == 0


async def test_delayed_will_sent_when_the_session_ends_first() -> None:
    async with running_broker() as broker:
        seen: list[BrokerMessage] = []
        broker.subscribe("w/#", collect(seen))
        will = Will("w/ended", b"bye", properties=Properties(will_delay_interval=60))
        client = await RawClient.open(broker.addresses["tcp"])
        await client.connect("e", will=will, properties=Properties(session_expiry_interval=60))
        client.writer.transport.abort()
        await eventually(lambda: broker.stats().clients_connected == 0)
        assert seen == []
        fresh = await RawClient.open(broker.addresses["tcp"])
        assert (await fresh.connect("e", clean_start=True)).session_present is False
        await eventually(lambda: len(seen) == 1)
        await fresh.close()


async def test_retain_handling_one_sends_retained_only_for_new_subscriptions() -> None:
    async with running_broker() as broker:
        await broker.publish("rh/1", b"kept", qos=1, retain=True)
        client = await RawClient.open(broker.addresses["tcp"])
        await client.connect("rh")
        request = SubscriptionRequest("rh/#", 1, retain_handling=1)
        client.send(Subscribe(1, [request]))
        assert isinstance(await client.receive(), Suback)
        first = await client.receive()
        assert isinstance(first, Publish)
        assert first.retain is True
        client.send(Puback(first.packet_id or 0))
        client.send(Subscribe(2, [request]))
        assert isinstance(await client.receive(), Suback)
        await broker.publish("rh/2", b"live", qos=0)
        live = await client.receive()
        assert isinstance(live, Publish)
        assert live.payload == b"live"
        await client.close()
