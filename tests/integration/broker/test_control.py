"""Authentication, authorization, administration and life cycle, checked at the byte level."""

from __future__ import annotations

import time
from typing import Any

import pytest

from mqtthub.broker import Broker, BrokerState
from mqtthub.broker.hooks import Action, BrokerMessage
from mqtthub.errors import StateError, UnavailableError
from mqtthub.mqtt.packets import (
    PROTOCOL_V5,
    PROTOCOL_V311,
    Disconnect,
    Properties,
    Puback,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    SubscriptionRequest,
)

from .support import (
    FakeAuth,
    HoldingSink,
    RawClient,
    RecordingObserver,
    collect,
    disconnect_codes,
    eventually,
    running_broker,
)


async def subscribe(client: RawClient, *filters: str, qos: int = 1) -> list[int]:
    client.send(Subscribe(1, [SubscriptionRequest(f, qos) for f in filters]))
    suback = await client.receive()
    assert isinstance(suback, Suback)
    return suback.reason_codes


@pytest.mark.parametrize(("level", "qos1_code", "suback_code"), [(PROTOCOL_V311, 0, 0x80), (PROTOCOL_V5, 0x87, 0x87)])
async def test_denied_publish_and_subscribe(level: int, qos1_code: int, suback_code: int) -> None:
    auth = FakeAuth(denied={(Action.PUBLISH, "secret/x"), (Action.SUBSCRIBE, "secret/#")})
    async with running_broker(auth) as broker:
        hub: list[BrokerMessage] = []
        broker.subscribe("#", collect(hub))
        client = await RawClient.open(broker.addresses["tcp"], level)
        await client.connect("c1")
        assert await subscribe(client, "secret/#", "open/#") == [suback_code, 1]
        client.send(Publish("secret/x", b"no", qos=1, packet_id=5))
        ack = await client.receive()
        assert isinstance(ack, Puback)
        assert (ack.packet_id, ack.reason_code) == (5, qos1_code)
        client.send(Publish("secret/x", b"no", qos=2, packet_id=6))
        rec = await client.receive()
        assert isinstance(rec, Pubrec)
        assert rec.reason_code == qos1_code
        client.send(Publish("$SYS/fake", b"no", qos=1, packet_id=7))
        assert isinstance(await client.receive(), Puback)
        await client.close()
        assert hub == []
        assert broker.stats().publish_denied == 3
        assert broker.stats().subscribe_denied == 1


@pytest.mark.parametrize(("level", "expected"), [(PROTOCOL_V311, 5), (PROTOCOL_V5, 0x87)])
async def test_authentication_refused(level: int, expected: int) -> None:
    async with running_broker(FakeAuth(refused={"mallory": 0x87})) as broker:
        client = await RawClient.open(broker.addresses["tcp"], level)
        connack = await client.connect("m", username="mallory", password=b"nope")
        assert connack.reason_code == expected
        assert await client.closed() == []
        assert broker.stats().auth_refused == 1


async def test_connack_properties_and_assigned_client_id() -> None:
    async with running_broker(max_keepalive=30, max_topic_aliases=4) as broker:
        client = await RawClient.open(broker.addresses["tcp"])
        connack = await client.connect("", keep_alive=600)
        props = connack.properties
        assert props is not None
        assert props.assigned_client_identifier
        assert props.server_keep_alive == 30
        assert props.topic_alias_maximum == 4
        assert props.receive_maximum == broker.config.receive_maximum
        assert props.maximum_packet_size == broker.config.max_packet_size
        assert props.shared_subscription_available == 1
        await client.close()


async def test_inbound_topic_alias() -> None:
    async with running_broker() as broker:
        hub: list[BrokerMessage] = []
        broker.subscribe("alias/#", collect(hub))
        client = await RawClient.open(broker.addresses["tcp"])
        await client.connect("aliaser")
        client.send(Publish("alias/long/topic", b"1", properties=Properties(topic_alias=1)))
        client.send(Publish("", b"2", properties=Properties(topic_alias=1)))
        await eventually(lambda: len(hub) == 2)
        assert [m.topic for m in hub] == ["alias/long/topic"] * 2
        assert all(m.properties is None or m.properties.topic_alias is None for m in hub)
        await client.close()


async def test_kick_takeover_and_observer() -> None:
    observer = RecordingObserver()
    async with running_broker(observer=observer) as broker:
        first = await RawClient.open(broker.addresses["tcp"])
        await first.connect("dev", username="dev")
        second = await RawClient.open(broker.addresses["tcp"])
        await second.connect("dev", username="dev")
        assert disconnect_codes(await first.closed()) == [0x8E]
        assert broker.kick(principal_id="user:dev") == 1
        assert disconnect_codes(await second.closed()) == [0x98]
        assert broker.kick(client_id="nobody") == 0
        await eventually(lambda: len(observer.events) == 4)
        assert [event[0] for event in observer.events] == ["connected", "disconnected", "connected", "disconnected"]
        assert observer.events[1][2] == "session taken over"


async def test_graceful_disconnect_reported() -> None:
    observer = RecordingObserver()
    async with running_broker(observer=observer) as broker:
        client = await RawClient.open(broker.addresses["tcp"])
        await client.connect("nice")
        client.send(Disconnect(0))
        assert await client.closed() == []
        await eventually(lambda: len(observer.events) == 2)
        assert observer.events[1][3] is True


async def test_expired_principal_is_disconnected() -> None:
    auth = FakeAuth(expires_at={"temp": time.time() + 0.3})
    async with running_broker(auth) as broker:
        client = await RawClient.open(broker.addresses["tcp"])
        assert (await client.connect("t", username="temp")).reason_code == 0
        assert disconnect_codes(await client.closed()) == [0xA0]
        assert broker.stats().expired_principals == 1


async def test_keepalive_enforced() -> None:
    async with running_broker() as broker:
        client = await RawClient.open(broker.addresses["tcp"])
        await client.connect("sleepy", keep_alive=1)
        assert disconnect_codes(await client.closed()) == [0x8D]
        assert broker.stats().keepalive_timeouts == 1


async def test_invalidate_drops_authorization_cache() -> None:
    auth = FakeAuth()
    async with running_broker(auth) as broker:
        client = await RawClient.open(broker.addresses["tcp"])
        await client.connect("c", username="u")
        for packet_id in (1, 2):
            client.send(Publish("t/1", b"x", qos=1, packet_id=packet_id))
            assert isinstance(await client.receive(), Puback)
        assert auth.authorize_calls == 1
        broker.invalidate("user:u")
        auth.denied.add((Action.PUBLISH, "t/1"))
        client.send(Publish("t/1", b"x", qos=1, packet_id=3))
        ack = await client.receive()
        assert isinstance(ack, Puback)
        assert ack.reason_code == 0x87
        await client.close()


async def test_sink_holds_acknowledgement_and_can_refuse() -> None:
    sink = HoldingSink()
    async with running_broker(sink=sink) as broker:
        hub: list[BrokerMessage] = []
        broker.subscribe("d/#", collect(hub))
        client = await RawClient.open(broker.addresses["tcp"])
        await client.connect("dev")
        client.send(Publish("d/1", b"stored", qos=1, packet_id=1))
        client.send(Publish("d/2", b"refused", qos=2, packet_id=2))
        await eventually(lambda: len(sink.futures) == 2)
        with pytest.raises(TimeoutError):
            await client.receive(timeout=0.2)
        sink.futures[0].set_result(0)
        assert await client.receive() == Puback(1)
        sink.futures[1].set_result(0x97)
        assert await client.receive() == Pubrec(2, 0x97)
        await eventually(lambda: len(hub) == 1)
        assert hub[0].topic == "d/1"
        assert broker.stats().sink_rejected == 1
        await client.close()


@pytest.mark.parametrize("level", [PROTOCOL_V311, PROTOCOL_V5])
async def test_sink_that_cannot_store_gets_no_acknowledgement(level: int) -> None:
    sink = HoldingSink()
    async with running_broker(sink=sink) as broker:
        hub: list[BrokerMessage] = []
        broker.subscribe("d/#", collect(hub))
        client = await RawClient.open(broker.addresses["tcp"], level)
        await client.connect("dev", clean_start=False)
        client.send(Publish("d/1", b"held", qos=1, packet_id=1))
        client.send(Publish("d/2", b"held", qos=2, packet_id=2))
        await eventually(lambda: len(sink.futures) == 2)
        sink.futures[0].set_exception(UnavailableError("store down"))
        sink.futures[1].cancel()
        received = await client.closed()
        # No PUBACK/PUBREC: a 3.1.1 client would take any acknowledgement as "stored".
        assert not any(isinstance(packet, Puback | Pubrec) for packet in received)
        assert disconnect_codes(received) == ([0x89] if level == PROTOCOL_V5 else [])
        assert broker.stats().sink_unavailable >= 1
        # The QoS 2 packet id was forgotten: the re-send after reconnecting is offered to the sink again.
        again = await RawClient.open(broker.addresses["tcp"], level)
        await again.connect("dev", clean_start=False)
        again.send(Publish("d/2", b"held", qos=2, packet_id=2, dup=True))
        await eventually(lambda: len(sink.futures) == 3)
        sink.futures[2].set_result(0)
        assert await again.receive() == Pubrec(2)
        await again.close()
        await eventually(lambda: len(hub) == 1)
        assert [message.payload for message in hub] == [b"held"]  # routed once, after it was stored


@pytest.mark.parametrize("level", [PROTOCOL_V311, PROTOCOL_V5])
async def test_qos1_resent_after_a_reconnect_is_offered_to_the_sink_once(level: int) -> None:
    sink = HoldingSink()
    async with running_broker(sink=sink) as broker:
        hub: list[BrokerMessage] = []
        broker.subscribe("d/#", collect(hub))
        persistent: dict[str, Any] = {"clean_start": False} | (
            {"properties": Properties(session_expiry_interval=60)} if level == PROTOCOL_V5 else {}
        )
        first = await RawClient.open(broker.addresses["tcp"], level)
        await first.connect("dev", **persistent)
        first.send(Publish("d/1", b"one", qos=1, packet_id=7))
        await eventually(lambda: len(sink.futures) == 1)
        await first.close()  # the connection drops before the PUBACK
        second = await RawClient.open(broker.addresses["tcp"], level)
        assert (await second.connect("dev", **persistent)).session_present
        # Re-sent while the first copy is still being stored: not offered again, acknowledged with it.
        second.send(Publish("d/1", b"one", qos=1, packet_id=7, dup=True))
        with pytest.raises(TimeoutError):
            await second.receive(timeout=0.2)
        sink.futures[0].set_result(0)
        assert await second.receive() == Puback(7)
        # Re-sent again (the PUBACK was lost too): acknowledged at once, still stored once.
        second.send(Publish("d/1", b"one", qos=1, packet_id=7, dup=True))
        assert await second.receive() == Puback(7)
        assert len(sink.futures) == 1
        # The id reused for a new message (DUP=0) is a new message.
        second.send(Publish("d/1", b"two", qos=1, packet_id=7))
        await eventually(lambda: len(sink.futures) == 2)
        sink.futures[1].set_result(0)
        assert await second.receive() == Puback(7)
        await second.close()
        await eventually(lambda: len(hub) == 2)
        assert [message.payload for message in hub] == [b"one", b"two"]
        assert broker.stats().qos1_duplicates == 2


async def test_qos2_duplicate_is_routed_once() -> None:
    async with running_broker() as broker:
        hub: list[BrokerMessage] = []
        broker.subscribe("q2/#", collect(hub))
        client = await RawClient.open(broker.addresses["tcp"])
        await client.connect("dup")
        client.send(Publish("q2/a", b"once", qos=2, packet_id=9))
        assert await client.receive() == Pubrec(9)
        client.send(Publish("q2/a", b"once", qos=2, packet_id=9, dup=True))
        assert await client.receive() == Pubrec(9)
        client.send(Pubrel(9))
        packet = await client.receive()
        assert packet.packet_id == 9  # type: ignore[union-attr]
        assert len(hub) == 1
        await client.close()


async def test_inflight_redelivered_with_dup_after_reconnect() -> None:
    async with running_broker() as broker:
        client = await RawClient.open(broker.addresses["tcp"], PROTOCOL_V311)
        await client.connect("p", clean_start=False)
        await subscribe(client, "r/#")
        await broker.publish("r/1", b"m", qos=1)
        first = await client.receive()
        assert isinstance(first, Publish)
        assert first.dup is False
        await client.close()
        await eventually(lambda: broker.stats().clients_connected == 0)
        again = await RawClient.open(broker.addresses["tcp"], PROTOCOL_V311)
        connack = await again.connect("p", clean_start=False)
        assert connack.session_present is True
        redelivered = await again.receive()
        assert isinstance(redelivered, Publish)
        assert (redelivered.dup, redelivered.packet_id, redelivered.payload) == (True, first.packet_id, b"m")
        again.send(Puback(redelivered.packet_id or 0))
        await again.close()


async def test_shutdown_disconnects_v5_clients_and_state_is_enforced() -> None:
    async with running_broker() as broker:
        client = await RawClient.open(broker.addresses["tcp"])
        await client.connect("stay")
        with pytest.raises(StateError):
            await broker.__aenter__()
    assert broker.state is BrokerState.CLOSED
    assert disconnect_codes(await client.closed()) == [0x8B]
    with pytest.raises(StateError):
        await broker.publish("a", b"b")
    with pytest.raises(StateError):
        await Broker.__aenter__(broker)


async def test_sys_topics_published() -> None:
    async with running_broker(sys_interval=0.2) as broker:
        seen: list[BrokerMessage] = []
        broker.subscribe("$SYS/broker/#", collect(seen))
        await eventually(lambda: any(m.topic == "$SYS/broker/uptime" for m in seen))
        client = await RawClient.open(broker.addresses["tcp"])
        await client.connect("watcher")
        assert await subscribe(client, "#", "$SYS/broker/clients/connected") == [1, 1]
        packet = await client.receive()
        assert isinstance(packet, Publish)
        assert packet.topic == "$SYS/broker/clients/connected"
        assert packet.retain is True
        await client.close()


async def test_takeover_of_a_session_that_ends_with_its_connection() -> None:
    async with running_broker() as broker:
        first = await RawClient.open(broker.addresses["tcp"])
        await first.connect("dup", clean_start=False, properties=Properties(session_expiry_interval=0))
        await subscribe(first, "t/#")
        second = await RawClient.open(broker.addresses["tcp"])
        connack = await second.connect("dup", clean_start=False, properties=Properties(session_expiry_interval=60))
        assert connack.session_present is False
        assert disconnect_codes(await first.closed()) == [0x8E]
        assert broker.stats().subscriptions == 0
        third = await RawClient.open(broker.addresses["tcp"])
        await third.connect("dup", clean_start=True)
        assert disconnect_codes(await second.closed()) == [0x8E]
        await third.close()
        await eventually(lambda: broker.stats().sessions == 0)


async def test_the_connected_count_follows_connects_and_disconnects() -> None:
    async with running_broker() as broker:
        assert broker.connected_count() == 0
        first = await RawClient.open(broker.addresses["tcp"], PROTOCOL_V311)
        await first.connect("one")
        second = await RawClient.open(broker.addresses["tcp"], PROTOCOL_V311)
        await second.connect("two")
        assert broker.connected_count() == 2 == broker.stats().clients_connected
        await first.close()
        await eventually(lambda: broker.connected_count() == 1)
        await second.close()
        await eventually(lambda: broker.connected_count() == 0)
