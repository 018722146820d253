"""The hubs' live events carried between them through RabbitMQ, so every hub's live clients see every reading.

In external broker mode each reading is stored by the one hub that took it from the ingest queue, and its live
events (``/api/v1/stream``, Socket.IO) are made there, after the commit, with what the commit gave them (row ids,
alerts). :class:`LiveRelay` hands them to the other hubs: every hub publishes its events to the direct exchange
``mqtthub.live`` of the default vhost, routed by organization id, and consumes an exclusive, auto-deleted queue of
its own (not a competing consumer: each hub gets every event it follows), bound to the organizations its own
clients listen to, as they come and go (a desired set, bound and unbound by one task). Events a hub published
itself come back to it only when it follows that organization too, and are skipped there: its clients had them
first-hand.

Live events are best effort, as they are on one hub (a slow client's queue drops the oldest): they are published
without confirms, the events of one loop iteration (a committed batch) travel as one message per organization,
and when more than ``max_in_flight`` messages wait for the connection, or it is down, further events are dropped
and counted rather than held.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection

from mqtthub.broker.episodes import EpisodeLog

logger = logging.getLogger(__name__)

LIVE_EXCHANGE = "mqtthub.live"
"""The direct exchange of the default vhost the hubs' live events go through (routing key: organization id)."""

RETRY_DELAY = 1.0
"""Seconds before binding again after the broker refused or was unreachable."""


class LiveRelay:
    """One hub's side of the live exchange; see the module docstring.

    Args:
        deliver: Called with the organization id and each event JSON another hub published.
        max_in_flight: Messages published and not yet written out, past which events are dropped.
        stop_timeout: Seconds :meth:`stop` waits for the messages being sent.
    """

    def __init__(
        self,
        deliver: Callable[[str, Mapping[str, Any]], object],
        *,
        max_in_flight: int = 64,
        stop_timeout: float = 5.0,
    ) -> None:
        self.hub_id = uuid.uuid4().hex
        """Marks this hub's messages, so it skips its own."""
        self.max_in_flight = max_in_flight
        self.stop_timeout = stop_timeout
        self.sent = 0
        """Events handed to the exchange."""
        self.received = 0
        """Events of other hubs delivered to this hub's clients."""
        self.dropped = 0
        """Events not sent: the connection was down or too far behind."""
        self._deliver = deliver
        self._exchange: AbstractExchange | None = None
        self._queue: AbstractQueue | None = None
        self._wanted: set[str] = set()
        self._bound: set[str] = set()
        self._changed = asyncio.Event()
        self._pending: dict[str, list[Any]] = {}
        self._flush_scheduled = False
        self._sending: set[asyncio.Task[None]] = set()
        self._binder: asyncio.Task[None] | None = None
        self._episodes = EpisodeLog()  # while the broker is away every batch fails: one line per episode

    async def start(self, connection: AbstractRobustConnection) -> None:
        """Declare the exchange and this hub's queue on ``connection`` (the default vhost's) and start consuming."""
        channel = await connection.channel()
        self._exchange = await channel.declare_exchange(LIVE_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True)
        self._queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await self._queue.consume(self._take, no_ack=True)
        self._binder = asyncio.ensure_future(self._bind_wanted())
        self._binder.set_name("rabbitmq-live-bindings")
        self._changed.set()

    async def stop(self) -> None:
        """Stop binding and wait for the messages being sent (the connection is closed after)."""
        if self._binder is not None:
            self._binder.cancel()
            await asyncio.gather(self._binder, return_exceptions=True)
        if self._sending:
            # A node that went away may never answer: what it has not taken by then is dropped.
            _, late = await asyncio.wait(list(self._sending), timeout=self.stop_timeout)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        self._exchange = None

    # --- following -------------------------------------------------------------------------------

    def follow(self, organization_id: str) -> None:
        """Receive the organization's events from the other hubs."""
        self._wanted.add(organization_id)
        self._changed.set()

    def unfollow(self, organization_id: str) -> None:
        """Stop receiving them."""
        self._wanted.discard(organization_id)
        self._changed.set()

    async def _bind_wanted(self) -> None:
        queue, exchange = self._queue, self._exchange
        assert queue is not None
        assert exchange is not None
        while True:
            await self._changed.wait()
            self._changed.clear()
            try:
                for organization_id in sorted(self._wanted - self._bound):
                    await queue.bind(exchange, routing_key=organization_id)
                    self._bound.add(organization_id)
                for organization_id in sorted(self._bound - self._wanted):
                    await queue.unbind(exchange, routing_key=organization_id)
                    self._bound.discard(organization_id)
            except (OSError, aio_pika.exceptions.AMQPError) as exc:
                self._episodes(logger, logging.WARNING, "bind", "live events: binding failed (%s); trying again", exc)
                await asyncio.sleep(RETRY_DELAY)
                self._changed.set()

    # --- sending ---------------------------------------------------------------------------------

    def send(self, organization_id: str, event: Mapping[str, Any]) -> None:
        """Hand an event of this hub to the others; sent with the rest of this loop iteration's. Never waits."""
        if self._exchange is None:
            self.dropped += 1
            return
        self._pending.setdefault(organization_id, []).append(event)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        pending, self._pending = self._pending, {}
        for organization_id, events in pending.items():
            if len(self._sending) >= self.max_in_flight:
                self.dropped += len(events)
                self._episodes(logger, logging.WARNING, "behind", "live events dropped: the broker is behind")
                continue
            task = asyncio.ensure_future(self._publish(organization_id, events))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _publish(self, organization_id: str, events: list[Any]) -> None:
        exchange = self._exchange
        if exchange is None:
            self.dropped += len(events)
            return
        body = json.dumps(events, separators=(",", ":")).encode()
        message = aio_pika.Message(body, content_type="application/json", app_id=self.hub_id)
        try:
            await exchange.publish(message, routing_key=organization_id)
        except (OSError, aio_pika.exceptions.AMQPError) as exc:
            self.dropped += len(events)
            self._episodes(logger, logging.WARNING, "publish", "live events not sent (%s)", exc)
            return
        self.sent += len(events)

    # --- receiving -------------------------------------------------------------------------------

    async def _take(self, incoming: AbstractIncomingMessage) -> None:
        if incoming.app_id == self.hub_id or not incoming.routing_key:
            return  # this hub's own events: its clients had them when they were committed here
        try:
            events = json.loads(incoming.body)
        except ValueError:
            events = None
        if not isinstance(events, list):
            self._episodes(logger, logging.WARNING, "malformed", "live events: a message that is not a list of events")
            return
        for event in events:
            if isinstance(event, Mapping):
                self._deliver(incoming.routing_key, event)
                self.received += 1
