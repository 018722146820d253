"""Broker state across broker restarts: the same state store under a new broker, real clients on real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.subscribeoptions import SubscribeOptions

from mqtthub.broker import Broker
from mqtthub.broker.hooks import BrokerMessage
from mqtthub.broker.persistence import InMemoryStateStore, StateBatch, StateStore, StoredState
from mqtthub.brokerstate import SQLiteStateStore
from mqtthub.mqtt.packets import (
    PROTOCOL_V5,
    Properties,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    SubscriptionRequest,
    Will,
)

from .support import WAIT, RawClient, collect, eventually, paho_props, running_broker

V311 = aiomqtt.ProtocolVersion.V311
V5 = aiomqtt.ProtocolVersion.V5
MODES = ["sync", "periodic"]


@asynccontextmanager
async def broker_on(store: StateStore, mode: str = "sync", **limits: Any) -> AsyncIterator[Broker]:
    async with running_broker(state_store=store, persistence=mode, persistence_interval=0.05, **limits) as broker:
        yield broker


def client(broker: Broker, client_id: str, protocol: aiomqtt.ProtocolVersion = V5, **kwargs: Any) -> aiomqtt.Client:
    host, port = broker.addresses["tcp"]
    return aiomqtt.Client(host, port, identifier=client_id, protocol=protocol, **kwargs)


def persistent_v5(expiry: int = 3600) -> dict[str, Any]:
    return {"clean_start": False, "properties": paho_props(PacketTypes.CONNECT, SessionExpiryInterval=expiry)}


async def next_message(sub: aiomqtt.Client) -> aiomqtt.Message:
    return await asyncio.wait_for(anext(sub.messages), WAIT)


@pytest.mark.parametrize("mode", MODES)
async def test_retained_messages_survive_a_restart(mode: str) -> None:
    store = InMemoryStateStore()
    async with broker_on(store, mode) as broker, client(broker, "pub", V311) as pub:
        await pub.publish("config/a", b"one", qos=1, retain=True)
        await pub.publish("config/b", b"two", qos=0, retain=True)
        await pub.publish("config/b", b"", qos=1, retain=True)  # cleared [MQTT-3.3.1-10]
    async with broker_on(store, mode) as broker:
        assert broker.stats().retained_messages == 1
        async with client(broker, "late", V311) as late:
            await late.subscribe("config/#", qos=1)
            message = await next_message(late)
    assert (message.topic.value, message.payload, message.retain) == ("config/a", b"one", True)


@pytest.mark.parametrize("mode", MODES)
async def test_v311_session_subscriptions_and_queued_messages_survive(mode: str) -> None:
    store = InMemoryStateStore()
    async with broker_on(store, mode) as broker:
        async with client(broker, "keeper", V311, clean_session=False) as sub:
            await sub.subscribe("q/#", qos=2)
        async with client(broker, "pub", V311) as pub:
            await pub.publish("q/1", b"one", qos=1)
            await pub.publish("q/2", b"two", qos=2)
            await pub.publish("q/0", b"not queued", qos=0)
    async with broker_on(store, mode) as broker:
        assert broker.stats().sessions == 1
        assert broker.stats().subscriptions == 1
        async with client(broker, "keeper", V311, clean_session=False) as sub:
            received = [await next_message(sub) for _ in range(2)]
            async with client(broker, "pub", V311) as pub:
                await pub.publish("q/3", b"live", qos=1)  # the subscription itself was restored
            received.append(await next_message(sub))
    assert [(m.topic.value, m.payload, m.qos) for m in received] == [
        ("q/1", b"one", 1),
        ("q/2", b"two", 2),
        ("q/3", b"live", 1),
    ]


async def test_v5_subscription_options_and_identifiers_survive() -> None:
    store = InMemoryStateStore()
    async with broker_on(store) as broker, client(broker, "keeper", **persistent_v5()) as sub:
        props = paho_props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=7)
        await sub.subscribe("s/#", options=SubscribeOptions(qos=1, noLocal=True), properties=props)
    async with broker_on(store) as broker, client(broker, "keeper", **persistent_v5()) as sub:
        await sub.publish("s/own", b"not to myself", qos=1)  # no local [MQTT-3.8.3-3]
        async with client(broker, "pub") as pub:
            await pub.publish("s/x", b"hello", qos=1)
        message = await next_message(sub)
    assert (message.topic.value, message.payload) == ("s/x", b"hello")
    assert message.properties is not None
    assert vars(message.properties)["SubscriptionIdentifier"] == [7]


async def test_session_present_after_restart_and_expired_sessions_are_not_restored() -> None:
    store = InMemoryStateStore()
    async with broker_on(store) as broker:
        async with client(broker, "long", **persistent_v5(3600)) as sub:
            await sub.subscribe("a", qos=1)
        async with client(broker, "short", **persistent_v5(1)) as sub:
            await sub.subscribe("b", qos=1)
    await asyncio.sleep(1.2)
    async with broker_on(store) as broker:
        assert broker.stats().sessions == 1
        raw = await RawClient.open(broker.addresses["tcp"], level=PROTOCOL_V5)
        connack = await raw.connect("long", clean_start=False, properties=Properties(session_expiry_interval=60))
        assert connack.session_present
        await raw.close()
        raw = await RawClient.open(broker.addresses["tcp"], level=PROTOCOL_V5)
        connack = await raw.connect("short", clean_start=False, properties=Properties(session_expiry_interval=60))
        assert not connack.session_present
        await raw.close()
    assert [record.client_id for record in (await store.read()).sessions] == ["long", "short"]


async def test_clean_start_discards_the_stored_session() -> None:
    store = InMemoryStateStore()
    async with broker_on(store) as broker:
        async with client(broker, "keeper", V311, clean_session=False) as sub:
            await sub.subscribe("q/#", qos=1)
        async with client(broker, "pub", V311) as pub:
            await pub.publish("q/1", b"one", qos=1)
        async with client(broker, "keeper", V311, clean_session=True):
            pass
    state = await store.read()
    assert (state.sessions, state.held) == ([], [])


async def test_inflight_message_is_resent_with_its_packet_id_after_a_restart() -> None:
    store = InMemoryStateStore()
    async with broker_on(store) as broker:
        raw = await RawClient.open(broker.addresses["tcp"], level=4)
        await raw.connect("slow", clean_start=False)
        raw.send(Subscribe(1, [SubscriptionRequest("in/#", qos=1)]))
        assert isinstance(await raw.receive(), Suback)
        async with client(broker, "pub", V311) as pub:
            await pub.publish("in/1", b"unacknowledged", qos=1)
        first = await raw.receive()
        assert isinstance(first, Publish)
        # No PUBACK: the message stays in flight through the restart.
    await raw.close()
    async with broker_on(store) as broker:
        raw = await RawClient.open(broker.addresses["tcp"], level=4)
        connack = await raw.connect("slow", clean_start=False)
        assert connack.session_present
        again = await raw.receive()
        assert isinstance(again, Publish)
        assert (again.packet_id, again.dup, again.payload) == (first.packet_id, True, b"unacknowledged")
        raw.send(Puback(again.packet_id or 0))
        await eventually(lambda: not store_held(store))
        await raw.close()


def store_held(store: InMemoryStateStore) -> list[int]:
    return [held.store_id for held in store._held.values()]


async def test_inbound_qos2_state_survives_a_restart() -> None:
    store = InMemoryStateStore()
    received: list[BrokerMessage] = []
    async with broker_on(store) as broker:
        raw = await RawClient.open(broker.addresses["tcp"], level=4)
        await raw.connect("sender", clean_start=False)
        raw.send(Publish("q2/x", b"once", qos=2, packet_id=9))
        assert isinstance(await raw.receive(), Pubrec)
    await raw.close()
    async with broker_on(store) as broker:
        broker.subscribe("q2/#", collect(received))
        raw = await RawClient.open(broker.addresses["tcp"], level=4)
        await raw.connect("sender", clean_start=False)
        # The sender did not see PUBCOMP, so it sends the PUBLISH again: not routed twice [MQTT-4.3.3-10].
        raw.send(Publish("q2/x", b"once", qos=2, dup=True, packet_id=9))
        assert isinstance(await raw.receive(), Pubrec)
        raw.send(Pubrel(9))
        comp = await raw.receive()
        assert isinstance(comp, Pubcomp)
        assert comp.reason_code == 0
        await raw.close()
    assert received == []


async def test_delayed_will_survives_a_restart_and_is_sent_when_due() -> None:
    store = InMemoryStateStore()
    async with broker_on(store) as broker:
        raw = await RawClient.open(broker.addresses["tcp"], level=PROTOCOL_V5)
        will = Will("wills/dev", b"gone", qos=1, properties=Properties(will_delay_interval=1))
        await raw.connect("dev", clean_start=False, will=will, properties=Properties(session_expiry_interval=60))
        raw.writer.transport.abort()
        await eventually(lambda: bool([s for s in store._sessions.values() if s.will is not None]))
    received: list[BrokerMessage] = []
    async with broker_on(store) as broker:
        broker.subscribe("wills/#", collect(received))
        await eventually(lambda: len(received) == 1)
        assert received[0].payload == b"gone"
    assert all(record.will is None for record in (await store.read()).sessions)


class HeldWrites(InMemoryStateStore):
    """The in-memory store, with writes that wait until the test lets them through, or fail."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail = 0
        self.writes = 0

    async def write(self, batch: StateBatch) -> None:
        await self.gate.wait()
        if self.fail:
            self.fail -= 1
            raise OSError("disk full")
        self.writes += 1
        await super().write(batch)


async def test_sync_mode_acknowledges_a_queued_message_only_once_stored() -> None:
    store = HeldWrites()
    async with broker_on(store, "sync") as broker:
        async with client(broker, "keeper", V311, clean_session=False) as sub:
            await sub.subscribe("q/#", qos=1)
        store.gate.clear()
        async with client(broker, "pub", V311) as pub:
            publish = asyncio.create_task(pub.publish("q/1", b"one", qos=1))
            await asyncio.sleep(0.3)
            assert not publish.done()
            assert not store_held(store)
            store.gate.set()
            await asyncio.wait_for(publish, WAIT)
            assert len(store_held(store)) == 1


async def test_failed_writes_hold_acknowledgements_and_are_retried() -> None:
    store = HeldWrites()
    async with running_broker(state_store=store, persistence="sync") as broker:
        assert isinstance(broker, Broker)
        async with client(broker, "keeper", V311, clean_session=False) as sub:
            await sub.subscribe("q/#", qos=1)
        store.fail = 1
        async with client(broker, "pub", V311) as pub:
            await asyncio.wait_for(pub.publish("q/1", b"one", qos=1, retain=True), WAIT)
    state: StoredState = await store.read()
    assert len(state.held) == 1
    assert [m.payload for m in state.retained] == [b"one"]


async def test_periodic_mode_does_not_wait_for_the_store() -> None:
    store = HeldWrites()
    store.gate.clear()
    async with broker_on(store, "periodic") as broker:
        async with client(broker, "keeper", V311, clean_session=False) as sub:
            await sub.subscribe("q/#", qos=1)
        async with client(broker, "pub", V311) as pub:
            await asyncio.wait_for(pub.publish("q/1", b"one", qos=1), WAIT)
        assert store.writes == 0
        store.gate.set()
    assert len((await store.read()).held) == 1


async def test_sync_mode_keeps_acknowledgements_in_order() -> None:
    store = HeldWrites()
    async with broker_on(store, "sync") as broker:
        async with client(broker, "keeper", V311, clean_session=False) as sub:
            await sub.subscribe("q/#", qos=1)
        store.gate.clear()
        raw = await RawClient.open(broker.addresses["tcp"], level=4)
        await raw.connect("publisher")
        raw.send(Publish("q/1", b"held for keeper", qos=1, packet_id=1))  # changes stored state
        await asyncio.sleep(0.2)
        raw.send(Publish("nobody/listens", b"changes nothing", qos=1, packet_id=2))
        with pytest.raises(TimeoutError):
            await raw.receive(timeout=0.3)
        store.gate.set()
        acks = [await raw.receive(), await raw.receive()]
        assert all(isinstance(ack, Puback) for ack in acks)
        assert [ack.packet_id for ack in acks if isinstance(ack, Puback)] == [1, 2]  # [MQTT-4.6.0-2]
        await raw.close()


async def test_a_locked_state_file_holds_acknowledgements_until_it_can_be_written(tmp_path: Path) -> None:
    path = tmp_path / "broker-state.db"
    async with (
        SQLiteStateStore(path, busy_timeout=0.1) as store,
        running_broker(state_store=store, persistence="sync") as broker,
    ):
        async with client(broker, "keeper", V311, clean_session=False) as sub:
            await sub.subscribe("q/#", qos=1)
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")  # another process holding the file
        async with client(broker, "pub", V311) as pub:
            publish = asyncio.create_task(pub.publish("q/1", b"one", qos=1))
            await eventually(lambda: broker.stats().state_write_error is not None)
            assert not publish.done()
            assert broker.stats().state_write_failures >= 1
            other.execute("ROLLBACK")
            other.close()
            await asyncio.wait_for(publish, WAIT)
        stats = broker.stats()
        assert stats.state_write_error is None
    async with SQLiteStateStore(path) as reopened:
        assert [held.message.payload for held in (await reopened.read()).held] == [b"one"]


@pytest.mark.parametrize("backend", ["memory", "file"])
async def test_a_queued_message_sent_and_unacknowledged_keeps_its_packet_id(tmp_path: Path, backend: str) -> None:
    async with contextlib.AsyncExitStack() as stack:
        store: StateStore = InMemoryStateStore()
        if backend == "file":
            store = await stack.enter_async_context(SQLiteStateStore(tmp_path / "broker-state.db"))
        async with broker_on(store) as broker:
            async with client(broker, "slow", V311, clean_session=False) as sub:
                await sub.subscribe("in/#", qos=1)
            async with client(broker, "pub", V311) as pub:
                await pub.publish("in/1", b"queued first", qos=1)  # stored whole while the client is away
            raw = await RawClient.open(broker.addresses["tcp"], level=4)
            await raw.connect("slow", clean_start=False)
            first = await raw.receive()
            assert isinstance(first, Publish)
            await asyncio.sleep(0.1)  # its packet id is stored as an update of the row
        await raw.close()
        async with broker_on(store) as broker:
            raw = await RawClient.open(broker.addresses["tcp"], level=4)
            await raw.connect("slow", clean_start=False)
            again = await raw.receive()
            assert isinstance(again, Publish)
            assert (again.packet_id, again.dup, again.payload) == (first.packet_id, True, b"queued first")
            await raw.close()
