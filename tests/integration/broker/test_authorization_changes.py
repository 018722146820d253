"""Retained messages asked for one by one, and subscriptions checked again when a principal's rights change."""

from __future__ import annotations

import pytest

from mqtthub.broker.hooks import Action
from mqtthub.mqtt.packets import Properties, Puback, Publish, Suback, Subscribe, SubscriptionRequest

from .support import FakeAuth, RawClient, eventually, running_broker


async def subscribe(client: RawClient, *filters: str) -> list[int]:
    client.send(Subscribe(1, [SubscriptionRequest(f, 1) for f in filters]))
    suback = await client.receive()
    assert isinstance(suback, Suback)
    return suback.reason_codes


async def test_retained_messages_the_authorizer_denies_are_not_sent() -> None:
    auth = FakeAuth(denied={(Action.RETAINED, "cfg/private")}, mountpoints={"tenant": "org/t/"})
    async with running_broker(auth) as broker:
        for topic in ("org/t/cfg/public", "org/t/cfg/private"):
            await broker.publish(topic, topic.encode(), qos=1, retain=True)
        client = await RawClient.open(broker.addresses["tcp"])
        await client.connect("reader", username="tenant")
        assert await subscribe(client, "cfg/#") == [1]
        message = await client.receive()
        assert isinstance(message, Publish)
        assert (message.topic, message.retain) == ("cfg/public", True)
        client.send(Puback(message.packet_id or 0))
        await broker.publish("org/t/cfg/private", b"live", qos=0)  # live messages follow the subscription
        live = await client.receive()
        assert isinstance(live, Publish)
        assert (live.topic, live.payload, live.retain) == ("cfg/private", b"live", False)
        await client.close()


@pytest.mark.parametrize("online", [True, False])
async def test_invalidate_removes_subscriptions_now_denied(online: bool) -> None:
    auth = FakeAuth()
    async with running_broker(auth) as broker:
        client = await RawClient.open(broker.addresses["tcp"])
        await client.connect("watcher", clean_start=False, properties=Properties(session_expiry_interval=60))
        assert await subscribe(client, "feed/#", "news/#") == [1, 1]
        if not online:
            await client.close()
            await eventually(lambda: broker.stats().clients_connected == 0)
        auth.denied.add((Action.SUBSCRIBE, "feed/#"))
        broker.invalidate("user:watcher")
        await eventually(lambda: broker.stats().subscriptions_revoked == 1)
        assert broker.stats().subscriptions == 1
        if online:
            await broker.publish("feed/1", b"gone", qos=1)
            await broker.publish("news/1", b"kept", qos=1)
            message = await client.receive()
            assert isinstance(message, Publish)
            assert message.topic == "news/1"
            await client.close()
