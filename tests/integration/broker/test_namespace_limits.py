"""A topic that fits the client's namespace but not the global one, and fan-out that survives one bad delivery."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiomqtt
import pytest

from mqtthub.broker import Broker
from mqtthub.broker.session import EncodeCache, Outgoing
from mqtthub.broker.subscriptions import Subscription
from mqtthub.mqtt.packets import (
    PROTOCOL_V5,
    PROTOCOL_V311,
    Connack,
    Properties,
    Puback,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    SubscriptionRequest,
    Will,
)

from .support import FakeAuth, RawClient, eventually, running_broker

MOUNT = "org/3f2a9c61/"
LONG = "t/" + "x" * 65_528  # 65,530 bytes: a valid topic, too long once MOUNT is put before it


async def subscribe(client: RawClient, topic_filter: str, qos: int = 1) -> None:
    client.send(Subscribe(1, [SubscriptionRequest(topic_filter, qos)]))
    assert isinstance(await client.receive(), Suback)


@asynccontextmanager
async def platform_admin(broker: Broker) -> AsyncIterator[list[aiomqtt.Message]]:
    """A paho (aiomqtt) 5.0 client in the global namespace subscribed to everything; yields what it receives."""
    host, port = broker.addresses["tcp"]
    received: list[aiomqtt.Message] = []
    async with aiomqtt.Client(host, port, identifier="admin", protocol=aiomqtt.ProtocolVersion.V5) as admin:
        await admin.subscribe("#", qos=1)

        async def collect() -> None:
            async for message in admin.messages:
                received.append(message)

        task = asyncio.create_task(collect())
        try:
            yield received
        finally:
            task.cancel()


@pytest.mark.parametrize(("level", "code"), [(PROTOCOL_V5, 0x90), (PROTOCOL_V311, 0)])
async def test_topic_too_long_after_the_prefix_is_refused(level: int, code: int) -> None:
    auth = FakeAuth(mountpoints={"tenant": MOUNT})
    async with running_broker(auth, max_packet_size=256 * 1024) as broker:
        async with platform_admin(broker) as received:
            await publish_too_long(broker, level, code, received)
        assert broker.stats().topic_too_long == 3


async def publish_too_long(broker: Broker, level: int, code: int, received: list[aiomqtt.Message]) -> None:
    """The PUBLISH is refused, the publisher and the global subscriber are still served."""
    publisher = await RawClient.open(broker.addresses["tcp"], level)
    await publisher.connect("device", username="tenant")
    publisher.send(Publish(LONG, b"too long", qos=1, packet_id=1))
    ack = await publisher.receive()
    assert isinstance(ack, Puback)
    assert (ack.packet_id, ack.reason_code) == (1, code)
    publisher.send(Publish(LONG, b"too long", qos=2, packet_id=2))
    rec = await publisher.receive()
    assert isinstance(rec, Pubrec)
    assert rec.reason_code == code
    if level == PROTOCOL_V311:
        publisher.send(Pubrel(2))
        assert (await publisher.receive()).packet_id == 2  # type: ignore[union-attr]
    publisher.send(Publish(LONG, b"too long"))  # QoS 0: dropped and counted
    # The publisher is still served, and so is the subscriber of the global namespace.
    publisher.send(Publish("t/short", b"fits", qos=1, packet_id=3))
    ack = await publisher.receive()
    assert isinstance(ack, Puback)
    assert ack.reason_code == 0
    await eventually(lambda: len(received) == 1)
    assert received[0].topic.value == MOUNT + "t/short"
    assert broker.stats().topic_too_long == 3
    assert broker.stats().protocol_errors == 0
    await publisher.close()


async def test_will_topic_too_long_after_the_prefix_is_refused() -> None:
    auth = FakeAuth(mountpoints={"tenant": MOUNT})
    async with running_broker(auth, max_packet_size=256 * 1024) as broker:
        client = await RawClient.open(broker.addresses["tcp"])
        connack = await client.connect("device", username="tenant", will=Will(LONG, b"gone"))
        assert isinstance(connack, Connack)
        assert connack.reason_code == 0x90
        assert broker.stats().topic_too_long == 1


async def test_a_message_one_subscriber_cannot_take_still_reaches_the_others() -> None:
    """A user property past 65,535 bytes cannot be sent to a 5.0 client; 3.1.1 clients get the message."""
    async with running_broker() as broker:
        v5 = await RawClient.open(broker.addresses["tcp"], PROTOCOL_V5)
        await v5.connect("v5")
        await subscribe(v5, "fan/#")
        v311 = await RawClient.open(broker.addresses["tcp"], PROTOCOL_V311)
        await v311.connect("v311")
        await subscribe(v311, "fan/#")
        props = Properties(user_properties=[("k", "v" * 70_000)])
        await broker.publish("fan/1", b"first", qos=1, properties=props)
        await broker.publish("fan/2", b"second", qos=1)
        got = [await v311.receive(), await v311.receive()]
        assert [p.payload for p in got if isinstance(p, Publish)] == [b"first", b"second"]
        only = await v5.receive()
        assert isinstance(only, Publish)
        assert only.payload == b"second"
        assert broker.stats().delivery_failed == 1
        await v5.close()
        await v311.close()


class Broken:
    """A subscriber whose delivery raises: the one seam faked here, to reach the fan-out's guard."""

    online = True
    calls = 0

    def deliver(self, out: Outgoing, cache: EncodeCache | None = None) -> None:
        self.calls += 1
        raise RuntimeError("subscriber broke")


async def test_a_failing_subscriber_never_stops_the_fan_out() -> None:
    async with running_broker() as broker:
        broken = Broken()
        core = broker._running()
        core.trie.add(Subscription(broken, "fan/#", qos=1))  # first in line
        subscribers = []
        for name in ("s1", "s2", "s3"):
            client = await RawClient.open(broker.addresses["tcp"])
            await client.connect(name)
            await subscribe(client, "fan/#")
            subscribers.append(client)
        publisher = await RawClient.open(broker.addresses["tcp"])
        await publisher.connect("publisher")
        publisher.send(Publish("fan/x", b"to all", qos=1, packet_id=9))
        ack = await publisher.receive()
        assert isinstance(ack, Puback)
        assert ack.reason_code == 0
        for client in subscribers:
            message = await client.receive()
            assert isinstance(message, Publish)
            assert message.payload == b"to all"
        assert broken.calls == 1
        assert broker.stats().delivery_failed == 1
        for client in (*subscribers, publisher):
            await client.close()
