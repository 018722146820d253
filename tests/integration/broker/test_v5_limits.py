"""Limits the broker announces and enforces: receive maximum, server keep alive, payload format."""

from __future__ import annotations

import asyncio
import time

import pytest
from paho.mqtt.packettypes import PacketTypes

from mqtthub.mqtt.packets import (
    PROTOCOL_V5,
    PROTOCOL_V311,
    Connack,
    Properties,
    Puback,
    Publish,
    Pubrec,
    Suback,
    Subscribe,
    SubscriptionRequest,
    Will,
)

from .support import HoldingSink, Paho, RawClient, disconnect_codes, eventually, paho_props, running_broker

NOT_UTF8 = b"\xc3\x28 is not UTF-8"


async def test_publish_beyond_the_receive_maximum_gets_disconnect_0x93() -> None:
    """With the sink holding acknowledgements, the fourth unacknowledged QoS 1 PUBLISH is one too many."""
    sink = HoldingSink()
    async with running_broker(sink=sink, receive_maximum=3) as broker:
        client = await RawClient.open(broker.addresses["tcp"])
        connack = await client.connect("greedy")
        assert connack.properties is not None
        assert connack.properties.receive_maximum == 3
        for packet_id in (1, 2, 3):
            client.send(Publish("rm/x", b"x", qos=1, packet_id=packet_id))
        await eventually(lambda: len(sink.futures) == 3)  # read, one chunk or three
        client.send(Publish("rm/x", b"x", qos=1, packet_id=4))
        assert disconnect_codes(await client.closed()) == [0x93]  # [MQTT-3.3.4-9]
        assert len(sink.futures) == 3


async def test_v311_publisher_beyond_the_window_is_slowed_down_not_dropped() -> None:
    sink = HoldingSink()
    async with running_broker(sink=sink, receive_maximum=3) as broker:
        client = await RawClient.open(broker.addresses["tcp"], PROTOCOL_V311)
        await client.connect("steady")
        for packet_id in (1, 2, 3):
            client.send(Publish("rm/x", b"x", qos=1, packet_id=packet_id))
        await eventually(lambda: len(sink.futures) == 3)
        for packet_id in (4, 5, 6):
            client.send(Publish("rm/x", b"x", qos=1, packet_id=packet_id))
        await asyncio.sleep(0.3)
        assert len(sink.futures) == 3  # 3.1.1 has no receive maximum: the broker stopped reading instead
        acked: list[int] = []
        while len(acked) < 6:
            for future in sink.futures:
                if not future.done():
                    future.set_result(0)
            ack = await client.receive()
            assert isinstance(ack, Puback)
            acked.append(ack.packet_id)
        assert acked == [1, 2, 3, 4, 5, 6]
        assert broker.stats().protocol_errors == 0
        await client.close()


async def test_paho_past_the_receive_maximum_is_disconnected_with_0x93() -> None:
    """paho does not read Receive Maximum from CONNACK: with its window above the broker's it overflows."""
    sink = HoldingSink()
    async with running_broker(sink=sink, receive_maximum=5) as broker:
        paho = Paho("eager")
        paho.client.max_inflight_messages_set(20)
        await paho.start(broker.addresses["tcp"])
        for n in range(20):
            paho.client.publish("rm/paho", f"{n}".encode(), qos=1)
        await eventually(lambda: bool(paho.disconnects))
        assert paho.disconnects[0] == 0x93
        assert len(sink.futures) == 5
        await paho.stop()


async def test_paho_within_the_receive_maximum_is_never_disconnected() -> None:
    sink = HoldingSink()
    async with running_broker(sink=sink, receive_maximum=5) as broker:
        paho = Paho("polite")
        paho.client.max_inflight_messages_set(5)  # what CONNACK announced
        await paho.start(broker.addresses["tcp"])
        mids = [paho.client.publish("rm/paho", f"{n}".encode(), qos=1).mid for n in range(40)]
        while len(paho.acks) < 40:
            await eventually(lambda: any(not f.done() for f in sink.futures) or len(paho.acks) == 40)
            assert sum(not f.done() for f in sink.futures) <= 5
            for future in sink.futures:
                if not future.done():
                    future.set_result(0)
            await asyncio.sleep(0.01)
        assert sorted(paho.acks) == sorted(mids)
        assert set(paho.acks.values()) == {0}
        assert paho.disconnects == []
        await paho.stop()


@pytest.mark.parametrize(("asked", "granted"), [(0, 20), (120, 20), (10, None)])
async def test_server_keep_alive_caps_what_paho_asks_for(asked: int, granted: int | None) -> None:
    async with running_broker(max_keepalive=20) as broker:
        paho = Paho(f"ka-{asked}")
        await paho.start(broker.addresses["tcp"], keepalive=asked)
        assert paho.connack is not None
        code, props = paho.connack
        assert code == 0
        assert getattr(props, "ServerKeepAlive", None) == granted  # [MQTT-3.1.2-21]
        await paho.stop()


async def test_server_keep_alive_is_enforced_on_a_client_that_asked_for_none() -> None:
    async with running_broker(max_keepalive=1) as broker:
        client = await RawClient.open(broker.addresses["tcp"])
        started = time.monotonic()
        connack = await client.connect("silent", keep_alive=0)
        assert connack.properties is not None
        assert connack.properties.server_keep_alive == 1
        assert disconnect_codes(await client.closed()) == [0x8D]
        assert time.monotonic() - started >= 1.5
        assert broker.stats().keepalive_timeouts == 1


async def test_payload_marked_utf8_that_is_not_gets_0x99() -> None:
    async with running_broker() as broker:
        subscriber = await RawClient.open(broker.addresses["tcp"])
        await subscriber.connect("reader")
        subscriber.send(Subscribe(1, [SubscriptionRequest("pf/#", 1)]))
        assert isinstance(await subscriber.receive(), Suback)
        utf8 = Properties(payload_format_indicator=1)
        client = await RawClient.open(broker.addresses["tcp"])
        await client.connect("writer")
        client.send(Publish("pf/1", NOT_UTF8, qos=1, packet_id=1, properties=utf8))
        assert await client.receive() == Puback(1, 0x99)
        client.send(Publish("pf/2", NOT_UTF8, qos=2, packet_id=2, properties=utf8))
        assert await client.receive() == Pubrec(2, 0x99)
        client.send(Publish("pf/0", NOT_UTF8, properties=utf8))  # QoS 0: dropped and counted
        client.send(Publish("pf/3", NOT_UTF8, qos=1, packet_id=3))  # not marked: not checked
        assert await client.receive() == Puback(3)
        client.send(Publish("pf/4", "grüße".encode(), qos=1, packet_id=4, properties=utf8))
        assert await client.receive() == Puback(4)
        received = [await subscriber.receive(), await subscriber.receive()]
        assert [(p.topic, p.payload) for p in received if isinstance(p, Publish)] == [
            ("pf/3", NOT_UTF8),
            ("pf/4", "grüße".encode()),
        ]
        forwarded = received[1]
        assert isinstance(forwarded, Publish)
        assert forwarded.properties is not None
        assert forwarded.properties.payload_format_indicator == 1  # forwarded unaltered [MQTT-3.3.2-4]
        assert broker.stats().payload_format_invalid == 3
        await client.close()
        await subscriber.close()


async def test_paho_publish_with_a_false_utf8_claim_gets_0x99() -> None:
    async with running_broker() as broker:
        paho = Paho("paho-writer")
        await paho.start(broker.addresses["tcp"])
        props = paho_props(PacketTypes.PUBLISH, PayloadFormatIndicator=1)
        bad = paho.client.publish("pf/paho", NOT_UTF8, qos=1, properties=props).mid
        good = paho.client.publish("pf/paho", "ok ✓".encode(), qos=1, properties=props).mid
        await eventually(lambda: len(paho.acks) == 2)
        assert paho.acks == {bad: 0x99, good: 0}
        assert paho.disconnects == []
        await paho.stop()


async def test_will_payload_marked_utf8_that_is_not_refuses_the_connect() -> None:
    async with running_broker() as broker:
        client = await RawClient.open(broker.addresses["tcp"], PROTOCOL_V5)
        will = Will("wills/x", NOT_UTF8, properties=Properties(payload_format_indicator=1))
        connack = await client.connect("liar", will=will)
        assert isinstance(connack, Connack)
        assert connack.reason_code == 0x99
        assert broker.stats().payload_format_invalid == 1
