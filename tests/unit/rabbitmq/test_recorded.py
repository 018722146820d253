"""The recorded-filters queues' own decisions, without a broker: bindings made as a desired-state diff, retried
after a failure, one consumer per organization's vhost and none in the default vhost."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import aio_pika
from aio_pika.abc import AbstractRobustConnection

from mqtthub.broker.hooks import BrokerMessage
from mqtthub.rabbitmq.recorded import RecordedQueues


class FakeQueue:
    """What the hub does with a queue: bindings and consumers (the one seam faked here, with its channel)."""

    def __init__(self) -> None:
        self.bindings: set[str] = set()
        self.refusals = 0
        self.consumers = 0

    async def bind(self, exchange: str, routing_key: str) -> None:
        if self.refusals:
            self.refusals -= 1
            raise aio_pika.exceptions.ChannelClosed(404, "refused")
        self.bindings.add(routing_key)

    async def unbind(self, exchange: str, routing_key: str) -> None:
        self.bindings.discard(routing_key)

    async def consume(self, callback: object, no_ack: bool) -> str:
        self.consumers += 1
        return f"tag-{self.consumers}"

    async def cancel(self, tag: str) -> None:
        self.consumers -= 1


class FakeConnection:
    def __init__(self) -> None:
        self.queues: dict[str, FakeQueue] = {}

    async def channel(self) -> FakeConnection:
        return self

    async def set_qos(self, prefetch_count: int) -> None:
        return None

    async def declare_queue(self, name: str, durable: bool) -> FakeQueue:
        return self.queues.setdefault(name, FakeQueue())


class Sink:
    def offer(self, message: BrokerMessage) -> asyncio.Future[int] | None:
        return None


async def _settled() -> None:
    """Let the binding task run its rounds."""
    for _ in range(10):
        await asyncio.sleep(0.01)


async def test_bindings_follow_what_is_wanted_in_each_organization_s_vhost() -> None:
    connections: dict[str, FakeConnection] = {}

    async def connection_of(vhost: str) -> AbstractRobustConnection:
        return cast(AbstractRobustConnection, connections.setdefault(vhost, FakeConnection()))

    queues = RecordedQueues("mqtthub.recorded", prefetch=10, connection_of=connection_of, retry_delay=0.01)
    queues.vhost_opened("/", await connection_of("/"))
    queues.record_into(Sink())
    runner = asyncio.create_task(queues.run())
    try:
        queues.bind("org/aaaaaa/factory/+/temperature")
        queues.bind("org/aaaaaa/alerts/#")
        queues.bind("global/#")  # outside every organization: not recorded
        await _settled()
        recorded = connections["aaaaaa"].queues["mqtthub.recorded"]
        assert recorded.bindings == {"factory.*.temperature", "alerts.#"}
        assert recorded.consumers == 1
        assert connections["/"].queues == {}
        queues.unbind("org/aaaaaa/alerts/#")
        await _settled()
        assert recorded.bindings == {"factory.*.temperature"}
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    await queues.stop()
    assert recorded.consumers == 0


async def test_a_refused_binding_is_tried_again() -> None:
    connection = FakeConnection()
    queue = connection.queues.setdefault("mqtthub.recorded", FakeQueue())
    queue.refusals = 2

    async def connection_of(vhost: str) -> Any:
        return connection

    queues = RecordedQueues("mqtthub.recorded", prefetch=10, connection_of=connection_of, retry_delay=0.01)
    queues.record_into(Sink())
    runner = asyncio.create_task(queues.run())
    try:
        queues.bind("org/aaaaaa/a/#")
        for _ in range(100):
            if queue.bindings:
                break
            await asyncio.sleep(0.01)
        assert queue.bindings == {"a.#"}
        assert queue.refusals == 0
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
