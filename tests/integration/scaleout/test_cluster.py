"""The RabbitMQ test cluster itself: two nodes in one cluster, routing across nodes, MQTT logins sent to the backend."""

from __future__ import annotations

import asyncio

import aio_pika
import pytest

from tests.integration.auth.mqttclient import connect
from tests.support.rabbitmq import RabbitCluster

# The first test of a session waits for the cluster to boot (15 s on a quiet machine, a minute under load).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def test_both_nodes_run_in_one_cluster(rabbit: RabbitCluster) -> None:
    nodes = rabbit.api("GET", "/nodes")
    assert sorted(node["name"] for node in nodes if node["running"]) == [node.name for node in rabbit.nodes]


async def test_a_message_published_on_one_node_is_consumed_on_the_other(rabbit: RabbitCluster) -> None:
    first, second = rabbit.nodes
    consumer = await aio_pika.connect(second.amqp_url)
    publisher = await aio_pika.connect(first.amqp_url)
    async with consumer, publisher:
        channel = await consumer.channel()
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind("amq.topic", routing_key="devices.*.datastream")
        out = await publisher.channel()
        exchange = await out.get_exchange("amq.topic")
        await exchange.publish(aio_pika.Message(b"21.5"), routing_key="devices.d1.datastream")
        await exchange.publish(aio_pika.Message(b"other"), routing_key="devices.d1.status")
        message = await _next(queue)
        assert (message.routing_key, message.body) == ("devices.d1.datastream", b"21.5")
        await message.ack()
        assert await queue.get(fail=False) is None


async def test_mqtt_logins_go_to_the_http_backend_and_are_refused_when_it_does_not_answer(
    rabbit: RabbitCluster,
) -> None:
    # The hub's own account is internal; any other login asks the HTTP backend, which no hub serves in this test:
    # every node answers CONNACK 4 (bad user name or password).
    for node in rabbit.nodes:
        code, _client = await connect(node.mqtt_port, "org1:device1", "not-a-token", client_id="probe")
        assert code == 4


async def _next(queue: aio_pika.abc.AbstractQueue) -> aio_pika.abc.AbstractIncomingMessage:
    for _ in range(100):
        message = await queue.get(fail=False)
        if message is not None:
            return message
        await asyncio.sleep(0.05)
    raise AssertionError("no message arrived")
