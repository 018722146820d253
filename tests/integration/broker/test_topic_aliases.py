"""Outbound topic aliases towards 5.0 clients that allow them, seen on the wire and by paho."""

from __future__ import annotations

import asyncio

from mqtthub.broker import Broker
from mqtthub.mqtt.packets import (
    PROTOCOL_V311,
    Properties,
    Puback,
    Publish,
    Suback,
    Subscribe,
    SubscriptionRequest,
)

from .support import Paho, RawClient, eventually, running_broker

A = "plant/berlin/line-4/press-17/hydraulics/pressure"
B = "plant/berlin/line-4/press-17/hydraulics/temperature"
C = "plant/berlin/line-4/press-18/hydraulics/pressure"


async def aliased_subscriber(broker: Broker, client_id: str, maximum: int | None, qos: int = 0) -> RawClient:
    client = await RawClient.open(broker.addresses["tcp"])
    props = Properties(topic_alias_maximum=maximum, session_expiry_interval=60)
    await client.connect(client_id, properties=props, clean_start=False)
    client.send(Subscribe(1, [SubscriptionRequest("plant/#", qos)]))
    assert isinstance(await client.receive(), Suback)
    return client


def on_wire(packet: object) -> tuple[str, int | None]:
    assert isinstance(packet, Publish)
    return packet.topic, packet.properties.topic_alias if packet.properties is not None else None


async def test_aliases_are_set_reused_and_recycled_least_recently_used_first() -> None:
    async with running_broker() as broker:
        client = await aliased_subscriber(broker, "lru", maximum=2)
        for topic in (A, B, A, C, B, B):
            await broker.publish(topic, b"1")
        assert [on_wire(await client.receive()) for _ in range(6)] == [
            (A, 1),  # name and alias
            (B, 2),
            ("", 1),  # alias only
            (C, 2),  # B was the least recently used: C takes its alias
            (B, 1),  # A was now older than C
            ("", 1),
        ]
        await client.close()


async def test_no_aliases_without_a_topic_alias_maximum() -> None:
    async with running_broker() as broker:
        for maximum in (None, 0):
            client = await aliased_subscriber(broker, f"plain-{maximum}", maximum=maximum)
            for topic in (A, A):
                await broker.publish(topic, b"1")
            assert [on_wire(await client.receive()) for _ in range(2)] == [(A, None), (A, None)]
            await client.close()
        v311 = await RawClient.open(broker.addresses["tcp"], PROTOCOL_V311)
        await v311.connect("v311")
        v311.send(Subscribe(1, [SubscriptionRequest("plant/#", 0)]))
        assert isinstance(await v311.receive(), Suback)
        await broker.publish(A, b"1")
        assert on_wire(await v311.receive()) == (A, None)
        await v311.close()


async def test_broker_never_exceeds_its_own_alias_maximum() -> None:
    async with running_broker(max_outbound_topic_aliases=1) as broker:
        client = await aliased_subscriber(broker, "small", maximum=100)
        for topic in (A, B, A):
            await broker.publish(topic, b"1")
        assert [on_wire(await client.receive()) for _ in range(3)] == [(A, 1), (B, 1), (A, 1)]
        await client.close()


async def test_a_dropped_publish_does_not_leave_the_client_an_alias_it_never_saw() -> None:
    async with running_broker() as broker:
        client = await RawClient.open(broker.addresses["tcp"])
        props = Properties(topic_alias_maximum=4, maximum_packet_size=200)
        await client.connect("tight", properties=props)
        client.send(Subscribe(1, [SubscriptionRequest("plant/#", 0)]))
        assert isinstance(await client.receive(), Suback)
        await broker.publish(A, b"x" * 500)  # above the client's maximum packet size: dropped
        await broker.publish(A, b"small")
        await broker.publish(A, b"again")
        assert [on_wire(await client.receive()) for _ in range(2)] == [(A, 1), ("", 1)]
        assert broker.stats().oversize_dropped == 1
        await client.close()


async def test_in_flight_messages_are_resent_with_their_name_after_a_reconnect() -> None:
    """Aliases end with the connection [MQTT-3.3.2-7]: what is re-sent names its topic again."""
    async with running_broker() as broker:
        first = await aliased_subscriber(broker, "resume", maximum=4, qos=1)
        await broker.publish(A, b"1", qos=1)
        await broker.publish(A, b"2", qos=1)
        assert [on_wire(await first.receive()) for _ in range(2)] == [(A, 1), ("", 1)]
        first.writer.transport.abort()  # leaves both unacknowledged
        await eventually(lambda: broker.stats().clients_connected == 0)
        second = await RawClient.open(broker.addresses["tcp"])
        connack = await second.connect(
            "resume", clean_start=False, properties=Properties(topic_alias_maximum=4, session_expiry_interval=60)
        )
        assert connack.session_present
        resent = [await second.receive() for _ in range(2)]
        assert [on_wire(packet) for packet in resent] == [(A, None), (A, None)]
        assert all(isinstance(packet, Publish) and packet.dup for packet in resent)
        for packet in resent:
            assert isinstance(packet, Publish)
            second.send(Puback(packet.packet_id or 0))
        await broker.publish(A, b"3", qos=1)
        assert on_wire(await second.receive()) == (A, 1)
        await second.close()


async def test_paho_v5_receives_aliases_it_asked_for() -> None:
    """paho passes the alias through (it does not resolve it): the application sees name, then alias only."""
    async with running_broker() as broker:
        paho = Paho("paho-alias", TopicAliasMaximum=8)
        await paho.start(broker.addresses["tcp"])
        paho.client.subscribe("plant/#", qos=1)
        await asyncio.sleep(0.2)
        for topic in (A, B, A, B):
            await broker.publish(topic, b"reading", qos=1)
        await eventually(lambda: len(paho.messages) == 4)
        seen = [(m.topic, m.properties.TopicAlias) for m in paho.messages]  # type: ignore[union-attr]
        assert seen == [(A, 1), (B, 2), ("", 1), ("", 2)]
        await paho.stop()


async def test_subscribers_sharing_an_encoding_get_their_own_packet_ids() -> None:
    """Two subscribers holding the same alias share one encoding per fan-out, each with its packet id."""
    async with running_broker() as broker:
        resumer = await aliased_subscriber(broker, "resumer", maximum=4, qos=1)
        await broker.publish(C, b"before", qos=1)
        assert on_wire(await resumer.receive()) == (C, 1)
        resumer.writer.transport.abort()  # packet id 1 stays in flight
        await eventually(lambda: broker.stats().clients_connected == 0)
        resumer = await RawClient.open(broker.addresses["tcp"])
        props = Properties(topic_alias_maximum=4, session_expiry_interval=60)
        assert (await resumer.connect("resumer", clean_start=False, properties=props)).session_present
        resent = await resumer.receive()
        assert isinstance(resent, Publish)
        assert (resent.packet_id, resent.dup) == (1, True)
        fresh = await aliased_subscriber(broker, "fresh", maximum=4, qos=1)
        await broker.publish(A, b"shared", qos=1)
        got_fresh, got_resumer = await fresh.receive(), await resumer.receive()
        assert isinstance(got_fresh, Publish)
        assert isinstance(got_resumer, Publish)
        assert [on_wire(got_fresh), on_wire(got_resumer)] == [(A, 1), (A, 1)]
        assert (got_fresh.packet_id, got_resumer.packet_id) == (1, 2)
        assert got_fresh.payload == got_resumer.payload == b"shared"
        await fresh.close()
        await resumer.close()
