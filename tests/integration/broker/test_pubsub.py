"""Publish/subscribe through the broker with aiomqtt (MQTT 3.1.1 and 5.0 over TCP)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.subscribeoptions import SubscribeOptions

from mqtthub.broker import Broker
from mqtthub.broker.hooks import BrokerMessage
from mqtthub.mqtt.packets import Will

from .support import WAIT, FakeAuth, RawClient, collect, eventually, paho_props, running_broker

V311 = aiomqtt.ProtocolVersion.V311
V5 = aiomqtt.ProtocolVersion.V5


@pytest.fixture
async def broker() -> AsyncIterator[Broker]:
    async with running_broker() as broker:
        yield broker


def client(broker: Broker, client_id: str, protocol: aiomqtt.ProtocolVersion = V5, **kwargs: object) -> aiomqtt.Client:
    host, port = broker.addresses["tcp"]
    return aiomqtt.Client(host, port, identifier=client_id, protocol=protocol, **kwargs)  # type: ignore[arg-type]


async def next_message(sub: aiomqtt.Client) -> aiomqtt.Message:
    return await asyncio.wait_for(anext(sub.messages), WAIT)


@pytest.mark.parametrize("protocol", [V311, V5])
@pytest.mark.parametrize(("pub_qos", "sub_qos"), [(0, 0), (1, 1), (2, 2), (2, 1), (1, 2)])
async def test_qos_flows_and_downgrade(
    broker: Broker, protocol: aiomqtt.ProtocolVersion, pub_qos: int, sub_qos: int
) -> None:
    async with client(broker, "sub", protocol) as sub, client(broker, "pub", protocol) as pub:
        await sub.subscribe("sensors/+/temp", qos=sub_qos)
        await pub.publish("sensors/1/temp", b"21.5", qos=pub_qos)
        message = await next_message(sub)
    assert message.topic.value == "sensors/1/temp"
    assert message.payload == b"21.5"
    assert message.qos == min(pub_qos, sub_qos)
    assert broker.stats().messages_received == 1


async def test_retained_set_delivered_and_cleared(broker: Broker) -> None:
    async with client(broker, "pub", V311) as pub:
        await pub.publish("status/dev1", b"online", qos=1, retain=True)
    async with client(broker, "late", V311) as late:
        await late.subscribe("status/#", qos=1)
        message = await next_message(late)
        assert (message.payload, message.retain) == (b"online", True)
    async with client(broker, "pub", V311) as pub:
        await pub.publish("status/dev1", b"", qos=1, retain=True)
    await eventually(lambda: broker.stats().retained_messages == 0)


async def test_retain_handling_and_retain_as_published(broker: Broker) -> None:
    async with client(broker, "pub") as pub:
        await pub.publish("r/1", b"kept", retain=True, qos=1)
    async with client(broker, "sub") as sub:
        await sub.subscribe("r/#", options=SubscribeOptions(qos=1, retainHandling=2))
        await sub.subscribe("other/#", options=SubscribeOptions(qos=1, retainAsPublished=True))
        async with client(broker, "pub") as pub:
            await pub.publish("other/x", b"live", retain=True, qos=1)
        message = await next_message(sub)
    assert (message.topic.value, message.retain) == ("other/x", True)


async def test_will_on_abnormal_disconnect_only(broker: Broker) -> None:
    received: list[BrokerMessage] = []
    broker.subscribe("wills/#", collect(received))
    will = aiomqtt.Will("wills/graceful", b"gone", qos=1)
    async with client(broker, "polite", V311, will=will):
        pass
    raw = await RawClient.open(broker.addresses["tcp"], level=4)
    await raw.connect("rude", will=Will("wills/rude", b"lost", qos=1))
    raw.writer.transport.abort()
    await eventually(lambda: len(received) == 1)
    await asyncio.sleep(0.1)
    assert [(m.topic, m.payload) for m in received] == [("wills/rude", b"lost")]


async def test_persistent_session_queues_while_offline(broker: Broker) -> None:
    async with client(broker, "keeper", V311, clean_session=False) as sub:
        await sub.subscribe("q/#", qos=1)
    async with client(broker, "pub", V311) as pub:
        for index in range(5):
            await pub.publish(f"q/{index}", str(index).encode(), qos=1)
        await pub.publish("q/zero", b"qos0 is not queued", qos=0)
    async with client(broker, "keeper", V311, clean_session=False) as sub:
        payloads = [(await next_message(sub)).payload for _ in range(5)]
    assert payloads == [b"0", b"1", b"2", b"3", b"4"]


async def test_v5_session_expiry_zero_discards_session(broker: Broker) -> None:
    props = paho_props(PacketTypes.CONNECT, SessionExpiryInterval=0)
    async with client(broker, "brief", properties=props, clean_start=False) as sub:
        await sub.subscribe("gone/#", qos=1)
    await eventually(lambda: broker.stats().sessions == 0)
    assert broker.stats().subscriptions == 0


async def test_offline_queue_is_bounded_drop_oldest() -> None:
    async with running_broker(max_queued_messages=3) as broker:
        async with client(broker, "keeper", V311, clean_session=False) as sub:
            await sub.subscribe("q/#", qos=1)
        async with client(broker, "pub", V311) as pub:
            for index in range(6):
                await pub.publish("q/x", str(index).encode(), qos=1)
        async with client(broker, "keeper", V311, clean_session=False) as sub:
            payloads = [(await next_message(sub)).payload for _ in range(3)]
        assert payloads == [b"3", b"4", b"5"]
        assert broker.stats().queue_dropped == 3


async def test_shared_subscription_round_robin(broker: Broker) -> None:
    async with client(broker, "w1") as w1, client(broker, "w2") as w2, client(broker, "pub") as pub:
        await w1.subscribe("$share/workers/jobs/#", qos=1)
        await w2.subscribe("$share/workers/jobs/#", qos=1)
        for index in range(4):
            await pub.publish(f"jobs/{index}", b"job", qos=1)
        first = [(await next_message(w1)).topic.value for _ in range(2)]
        second = [(await next_message(w2)).topic.value for _ in range(2)]
    assert sorted(first + second) == ["jobs/0", "jobs/1", "jobs/2", "jobs/3"]


async def test_v5_properties_pass_through_with_subscription_identifier(broker: Broker) -> None:
    sub_props = paho_props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=7)
    pub_props = paho_props(
        PacketTypes.PUBLISH,
        PayloadFormatIndicator=1,
        ContentType="application/json",
        ResponseTopic="replies/1",
        CorrelationData=b"corr",
        UserProperty=[("k", "v")],
        MessageExpiryInterval=60,
    )
    async with client(broker, "sub") as sub, client(broker, "pub") as pub:
        await sub.subscribe("props/#", qos=1, properties=sub_props)
        await pub.publish("props/a", b"{}", qos=1, properties=pub_props)
        message = await next_message(sub)
    props = vars(message.properties)
    assert props["PayloadFormatIndicator"] == 1
    assert props["ContentType"] == "application/json"
    assert props["ResponseTopic"] == "replies/1"
    assert props["CorrelationData"] == b"corr"
    assert props["UserProperty"] == [("k", "v")]
    assert 0 < props["MessageExpiryInterval"] <= 60
    assert props["SubscriptionIdentifier"] == [7]


async def test_no_local(broker: Broker) -> None:
    async with client(broker, "self") as me:
        await me.subscribe("loop/#", options=SubscribeOptions(qos=1, noLocal=True))
        await me.subscribe("echo/#", qos=1)
        await me.publish("loop/1", b"not back", qos=1)
        await me.publish("echo/1", b"back", qos=1)
        message = await next_message(me)
    assert message.topic.value == "echo/1"


async def test_mountpoints_isolate_organizations() -> None:
    auth = FakeAuth(mountpoints={"alice": "org/a/", "bob": "org/b/"})
    async with running_broker(auth) as broker:
        hub: list[BrokerMessage] = []
        broker.subscribe("org/+/device/#", collect(hub))
        async with (
            client(broker, "a1", username="alice") as alice,
            client(broker, "b1", username="bob") as bob,
            client(broker, "a2", username="alice") as alice_pub,
        ):
            await alice.subscribe("#", qos=1)
            await bob.subscribe("#", qos=1)
            await alice_pub.publish("device/7/telemetry", b"1", qos=1)
            message = await next_message(alice)
            await broker.publish("org/b/device/9/telemetry", b"2", qos=1)
            from_hub = await next_message(bob)
        assert message.topic.value == "device/7/telemetry"
        assert from_hub.topic.value == "device/9/telemetry"
        await eventually(lambda: len(hub) == 2)
        assert [m.topic for m in hub] == ["org/a/device/7/telemetry", "org/b/device/9/telemetry"]


async def test_local_subscription_and_on_delivered(broker: Broker) -> None:
    delivered: list[str] = []
    async with client(broker, "sub") as sub:
        await sub.subscribe("hub/#", qos=1)
        local: list[BrokerMessage] = []
        handle = broker.subscribe("$share/g/hub/#", collect(local))
        await broker.publish("hub/cmd", b"go", qos=1, on_delivered=delivered.append)
        await next_message(sub)
        await eventually(lambda: delivered == ["sub"])
        broker.unsubscribe(handle)
        await broker.publish("hub/cmd", b"again")
        await next_message(sub)
    assert len(local) == 1
