"""Every vhost's recorded-filters queue, as one hub uses it: its consumer, and the bindings the hub wants there.

The queue (``mqtthub.recorded`` by default) is durable and mirrored like the ingest queue, declared by whichever hub
opens the vhost first, and consumed by every hub as a competing consumer (an
:class:`~mqtthub.rabbitmq.ingest.IngestConsumer` whose sink is the history: see :mod:`mqtthub.messaging.shared`).
Its bindings on ``amq.topic`` are the organization's recorded filters. Each hub keeps the set of bindings it wants
and one task makes them so, as a desired-state diff: it binds what is wanted and not yet bound, unbinds what was
bound and is no longer wanted, and tries again after ``retry_delay`` seconds when the broker refused or was away.
Binding and unbinding are idempotent on RabbitMQ's side, so several hubs may each bind the same filter.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import aio_pika
from aio_pika.abc import AbstractRobustConnection

from mqtthub.broker.episodes import EpisodeLog
from mqtthub.broker.hooks import MessageSink
from mqtthub.errors import MQTTHubError
from mqtthub.rabbitmq.ingest import IngestConsumer
from mqtthub.rabbitmq.topics import DEFAULT_VHOST, routing_key, split_topic

logger = logging.getLogger(__name__)


class RecordedQueues:
    """One hub's side of the recorded-filters queues of every vhost; see the module docstring.

    Args:
        queue: The queue's name in every vhost.
        prefetch: Unacknowledged messages the hub holds per vhost.
        connection_of: Opens (or finds) the hub's connection to a vhost.
        retry_delay: Seconds before binding again after a failure.
    """

    def __init__(
        self,
        queue: str,
        *,
        prefetch: int,
        connection_of: Callable[[str], Awaitable[AbstractRobustConnection]],
        retry_delay: float = 1.0,
    ) -> None:
        self.queue = queue
        self.retry_delay = retry_delay
        self._prefetch = prefetch
        self._connection_of = connection_of
        self._sink: MessageSink | None = None
        self._connections: dict[str, AbstractRobustConnection] = {}
        self._consumers: dict[str, asyncio.Future[IngestConsumer]] = {}
        self._wanted: dict[str, set[str]] = {}
        self._bound: dict[str, set[str]] = {}
        self._changed = asyncio.Event()
        self._episodes = EpisodeLog()

    def record_into(self, sink: MessageSink) -> None:
        """Consume the queue of every vhost opened so far and from now on, into ``sink``."""
        self._sink = sink
        for vhost, connection in self._connections.items():
            if vhost != DEFAULT_VHOST:
                self._consumer(vhost, connection)

    def vhost_opened(self, vhost: str, connection: AbstractRobustConnection) -> None:
        """The hub opened ``vhost``: consume its queue too (once there is a sink)."""
        self._connections[vhost] = connection
        if self._sink is not None and vhost != DEFAULT_VHOST:
            self._consumer(vhost, connection)

    def bind(self, topic_filter: str) -> None:
        """Want the internal ``topic_filter`` (in an organization's namespace) bound to its vhost's queue."""
        vhost, inner = split_topic(topic_filter)
        if vhost == DEFAULT_VHOST:
            logger.warning("not recording %.200s: a recorded filter must be in an organization", topic_filter)
            return
        self._wanted.setdefault(vhost, set()).add(routing_key(inner))
        self._changed.set()

    def unbind(self, topic_filter: str) -> None:
        """Want it unbound (what is queued already is still recorded)."""
        vhost, inner = split_topic(topic_filter)
        self._wanted.get(vhost, set()).discard(routing_key(inner))
        self._changed.set()

    async def run(self) -> None:
        """Make the bindings what is wanted, whenever that changes, until cancelled."""
        while True:
            await self._changed.wait()
            self._changed.clear()
            try:
                for vhost in sorted(set(self._wanted) | set(self._bound)):
                    await self._reconcile(vhost)
            except (OSError, MQTTHubError, aio_pika.exceptions.AMQPError) as exc:
                self._episodes(logger, logging.WARNING, "bind", "recorded filters: binding failed (%s)", exc)
                await asyncio.sleep(self.retry_delay)
                self._changed.set()

    async def _reconcile(self, vhost: str) -> None:
        wanted = self._wanted.get(vhost, set())
        bound = self._bound.setdefault(vhost, set())
        if not wanted and not bound:
            return
        consumer = await asyncio.shield(self._consumer(vhost, await self._connection_of(vhost)))
        for key in sorted(wanted - bound):
            await consumer.bind(key)
            bound.add(key)
        for key in sorted(bound - wanted):
            await consumer.unbind(key)
            bound.discard(key)

    async def stop(self) -> None:
        """Stop consuming: what this hub holds unacknowledged goes back to the queues."""
        for started in self._consumers.values():
            if started.done() and not started.cancelled() and started.exception() is None:
                await started.result().stop()
            else:
                started.cancel()
        self._consumers.clear()

    def _consumer(self, vhost: str, connection: AbstractRobustConnection) -> asyncio.Future[IngestConsumer]:
        started = self._consumers.get(vhost)
        if started is not None and not (started.done() and (started.cancelled() or started.exception())):
            return started
        assert self._sink is not None, "consumed before record_into()"
        consumer = IngestConsumer(connection, vhost, self.queue, self._sink, prefetch=self._prefetch, bindings=())
        started = asyncio.ensure_future(_started(consumer))
        started.add_done_callback(lambda done: self._report(vhost, done))
        self._consumers[vhost] = started
        return started

    def _report(self, vhost: str, started: asyncio.Future[IngestConsumer]) -> None:
        if not started.cancelled() and (exc := started.exception()) is not None:
            self._episodes(logger, logging.WARNING, "start", "recorded filters of %s: not consumed (%s)", vhost, exc)
            self._changed.set()  # tried again by the binding task


async def _started(consumer: IngestConsumer) -> IngestConsumer:
    await consumer.start()
    return consumer
