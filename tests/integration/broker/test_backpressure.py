"""A client that acknowledges more slowly than its publishers publish slows them down instead of losing messages."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mqtthub.brokerstate import SQLiteStateStore
from mqtthub.mqtt.packets import PROTOCOL_V311, Puback, Publish, Subscribe, SubscriptionRequest
from tests.integration.broker.support import WAIT, Paho, RawClient, eventually, running_broker

PUBLISHERS = 100
MESSAGES = 10


async def test_a_hundred_qos1_publishers_with_one_in_flight_each_lose_nothing() -> None:
    # The subscriber takes one message at a time (in-flight window 1) and its session holds at most 300: without
    # back-pressure the hundred publishers would overflow that queue at once, and it would drop its oldest. Held
    # from 150 on, it grows by at most the messages the publishers have in flight.
    async with running_broker(max_inflight=1, max_queued_messages=300) as broker:
        address = broker.addresses["tcp"]
        subscriber = Paho("subscriber", v5=False)
        await subscriber.start(address)
        subscriber.client.subscribe("devices/#", qos=1)
        await eventually(lambda: broker.stats().subscriptions == 1)
        publishers = [Paho(f"device-{n:03d}", v5=False) for n in range(PUBLISHERS)]
        for publisher in publishers:
            publisher.client.max_inflight_messages_set(1)
        try:
            await asyncio.gather(*(publisher.start(address) for publisher in publishers))
            for n, publisher in enumerate(publishers):
                for m in range(MESSAGES):
                    publisher.client.publish(f"devices/{n:03d}/data", f"{n}:{m}".encode(), qos=1)
            await eventually(lambda: len(subscriber.messages) >= PUBLISHERS * MESSAGES, timeout=60)
            await eventually(lambda: all(len(publisher.acks) == MESSAGES for publisher in publishers))
        finally:
            await asyncio.gather(*(publisher.stop() for publisher in publishers))
            await subscriber.stop()
        received = sorted(message.payload.decode() for message in subscriber.messages)
        assert received == sorted(f"{n}:{m}" for n in range(PUBLISHERS) for m in range(MESSAGES))
        stats = broker.stats()
        assert stats.queue_dropped == 0
        assert stats.acks_held > 0  # the publishers were slowed down, not merely lucky


async def test_held_acknowledgements_wait_for_the_stored_state_too(tmp_path: Path) -> None:
    # A persistent subscriber with sync persistence: what it queues is journaled, and a held PUBACK, once let go,
    # still leaves only after that state is stored.
    async with (
        SQLiteStateStore(tmp_path / "broker-state.db") as store,
        running_broker(state_store=store, persistence="sync", max_inflight=1, max_queued_messages=60) as broker,
    ):
        address = broker.addresses["tcp"]
        subscriber = Paho("keeper", SessionExpiryInterval=3600)
        await subscriber.start(address)
        subscriber.client.subscribe("devices/#", qos=1)
        await eventually(lambda: broker.stats().subscriptions == 1)
        publishers = [Paho(f"device-{n:02d}", v5=False) for n in range(30)]
        for publisher in publishers:
            publisher.client.max_inflight_messages_set(1)
        try:
            await asyncio.gather(*(publisher.start(address) for publisher in publishers))
            for n, publisher in enumerate(publishers):
                for m in range(5):
                    publisher.client.publish(f"devices/{n:02d}/data", f"{n}:{m}".encode(), qos=1)
            await eventually(lambda: len(subscriber.messages) >= 150, timeout=60)
            await eventually(lambda: all(len(publisher.acks) == 5 for publisher in publishers))
        finally:
            await asyncio.gather(*(publisher.stop() for publisher in publishers))
            await subscriber.stop()
        assert sorted(m.payload.decode() for m in subscriber.messages) == sorted(
            f"{n}:{m}" for n in range(30) for m in range(5)
        )
        stats = broker.stats()
        assert stats.queue_dropped == 0
        assert stats.acks_held > 0


async def test_a_client_that_stops_acknowledging_holds_its_publishers_only_for_a_while() -> None:
    async with running_broker(
        max_inflight=1, max_queued_messages=20, publisher_hold_limit=0.3, housekeeping_interval=0.05
    ) as broker:
        address = broker.addresses["tcp"]
        stuck = await RawClient.open(address, PROTOCOL_V311)
        await stuck.connect("stuck")
        stuck.send(Subscribe(1, [SubscriptionRequest("devices/#", qos=1)]))
        await stuck.receive()  # SUBACK; it never acknowledges what follows
        publisher = Paho("device", v5=False)
        publisher.client.max_inflight_messages_set(1)
        await publisher.start(address)
        try:
            for m in range(60):
                publisher.client.publish("devices/1/data", str(m).encode(), qos=1)
            # Held once the stuck client's queue is half full, let go after the limit: every message is
            # acknowledged, and the stuck client's session drops its oldest as its bound says.
            await eventually(lambda: len(publisher.acks) == 60)
        finally:
            await publisher.stop()
        stats = broker.stats()
        assert stats.holds_given_up >= 1
        assert stats.queue_dropped > 0
        first = await stuck.receive()
        assert isinstance(first, Publish)
        assert first.payload == b"0"  # it was in flight, never dropped
        stuck.send(Puback(first.packet_id or 0))
        await stuck.close()


async def test_an_offline_session_holds_no_publisher_back() -> None:
    async with running_broker(max_queued_messages=20) as broker:
        address = broker.addresses["tcp"]
        away = await RawClient.open(address, PROTOCOL_V311)
        await away.connect("away", clean_start=False)
        away.send(Subscribe(1, [SubscriptionRequest("devices/#", qos=1)]))
        await away.receive()
        await away.close()
        await eventually(lambda: broker.stats().clients_connected == 0)
        publisher = Paho("device", v5=False)
        await publisher.start(address)
        try:
            for m in range(60):
                publisher.client.publish("devices/1/data", str(m).encode(), qos=1)
            await asyncio.wait_for(_acknowledged(publisher, 60), WAIT)
        finally:
            await publisher.stop()
        stats = broker.stats()
        assert stats.acks_held == 0
        assert stats.queue_dropped == 40  # the persistent session keeps its newest 20


async def _acknowledged(publisher: Paho, count: int) -> None:
    while len(publisher.acks) < count:
        await asyncio.sleep(0.02)
