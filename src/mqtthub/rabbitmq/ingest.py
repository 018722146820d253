"""Device topics consumed from one vhost's replicated ingest queue, acknowledged once stored.

Every hub consumes the same durable queue, bound to ``amq.topic`` for the device topics the hub stores, so the
hubs are competing consumers: each message goes to one of them. A message is acknowledged to RabbitMQ only when
the telemetry writer's batch holding it has committed (the same future that holds a PUBACK with the embedded
broker), so a hub killed at any moment loses nothing: what it had not acknowledged is delivered again to another
hub. A message the writer could not store (database down past its hold timeout, hub stopping) is returned to the
queue; one refused as data (its reason code ``>= 0x80``) is acknowledged, as the embedded broker acknowledges it to
a 3.1.1 publisher, and counted by the writer. The queue's mirroring is a policy the hub sets on every vhost.

The vhost's recorded-filters queue works the same way with the history writer as its sink; its bindings are the
organization's recorded filters, made and removed by whichever hub learns of them (see
:mod:`mqtthub.messaging.shared`). A message matching several of them is in the queue once, so it is recorded once.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection

from mqtthub.broker.hooks import BrokerMessage, MessageSink
from mqtthub.rabbitmq.topics import internal_topic

logger = logging.getLogger(__name__)

DEVICE_BINDINGS = ("devices.*.datastream", "devices.*.status", "devices.*.commands.reply", "device.*.telemetry.#")
"""The device topics the hub stores (see :mod:`mqtthub.telemetry.routing`), as binding keys."""


class IngestConsumer:
    """One hub's consumer on one vhost's ingest queue."""

    def __init__(
        self,
        connection: AbstractRobustConnection,
        vhost: str,
        queue: str,
        sink: MessageSink,
        *,
        prefetch: int,
        bindings: tuple[str, ...] = DEVICE_BINDINGS,
    ) -> None:
        self._connection = connection
        self._bindings = bindings
        self._vhost = vhost
        self._queue_name = queue
        self._sink = sink
        self._prefetch = prefetch
        self._channel: AbstractChannel | None = None
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None
        self._waiting: set[asyncio.Task[None]] = set()
        self.received = 0
        """Messages taken from the queue (redeliveries included)."""
        self.returned = 0
        """Messages given back to the queue because they could not be stored."""

    async def start(self) -> None:
        """Declare and bind the queue (idempotent across hubs) and start consuming with manual acknowledgement."""
        self._channel = await self._connection.channel()
        await self._channel.set_qos(prefetch_count=self._prefetch)
        self._queue = await self._channel.declare_queue(self._queue_name, durable=True)
        for binding in self._bindings:
            await self.bind(binding)
        self._tag = await self._queue.consume(self._take, no_ack=False)

    async def bind(self, binding: str) -> None:
        """Route the messages of ``binding`` (a binding key on ``amq.topic``) to the queue too (idempotent)."""
        assert self._queue is not None, "bound before start()"
        await self._queue.bind("amq.topic", routing_key=binding)

    async def unbind(self, binding: str) -> None:
        """Stop routing them there (idempotent)."""
        assert self._queue is not None, "unbound before start()"
        await self._queue.unbind("amq.topic", routing_key=binding)

    async def stop(self) -> None:
        """Stop taking messages and wait for the ones being stored (their acknowledgements are sent)."""
        if self._queue is not None and self._tag is not None:
            await self._queue.cancel(self._tag)
            self._tag = None
        if self._waiting:
            await asyncio.gather(*self._waiting, return_exceptions=True)

    async def _take(self, incoming: AbstractIncomingMessage) -> None:
        self.received += 1
        qos = incoming.headers.get("x-mqtt-publish-qos", 1)
        message = BrokerMessage(
            internal_topic(self._vhost, incoming.routing_key or ""),
            incoming.body,
            qos=qos if isinstance(qos, int) else 1,
            received_at=time.time(),
        )
        stored = self._sink.offer(message)
        if stored is None:
            await incoming.ack()  # not a topic the hub stores (bound too widely by an operator): nothing to keep
            return
        task = asyncio.ensure_future(self._settle(incoming, stored))
        self._waiting.add(task)
        task.add_done_callback(self._waiting.discard)

    async def _settle(self, incoming: AbstractIncomingMessage, stored: asyncio.Future[int]) -> None:
        try:
            await stored
        except Exception as exc:  # not stored, and not the message's fault: another hub (or this one) tries again
            self.returned += 1
            logger.warning("message on %s not stored (%s): returned to the queue", incoming.routing_key, exc)
            await incoming.nack(requeue=True)
            return
        await incoming.ack()
