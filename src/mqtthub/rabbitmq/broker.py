"""A RabbitMQ cluster standing in for the embedded broker, behind :class:`~mqtthub.broker.handle.BrokerHandle`.

Devices and apps connect to RabbitMQ's MQTT plugin, which asks the hub's HTTP auth backend who they are. The hub
itself speaks AMQP to ``amq.topic`` in each organization's vhost (see :mod:`mqtthub.rabbitmq.topics`):

* it publishes there (REST publish, commands, broadcasts, republish actions), with publisher confirms;
* every hub consumes the vhost's ingest queue (:mod:`mqtthub.rabbitmq.ingest`) as a competing consumer and
  acknowledges a message only once the telemetry writer committed it;
* in-process subscriptions (live feeds) are bindings of one exclusive queue per hub and vhost;
* recorded filters are bindings of the vhost's shared durable queue, which every hub consumes as a competing consumer
  once the messaging service hands it the history's sink (:mod:`mqtthub.rabbitmq.recorded`), acknowledging a message
  once its history row is committed;
* the hub's live events go to the other hubs, and theirs come to it, through :mod:`mqtthub.rabbitmq.live`;
* connected clients come from the management API, polled every ``poll_interval`` seconds, and a kick closes their
  connection there (on whichever node it is); organizations another hub created are joined at the same pace.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Self
from urllib.parse import quote, urlsplit, urlunsplit

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)

from mqtthub.broker import BrokerState
from mqtthub.broker.hooks import BrokerMessage, MessageSink, Principal
from mqtthub.broker.inspection import ClientInfo
from mqtthub.broker.stats import BrokerStats
from mqtthub.errors import StateError, UnavailableError
from mqtthub.mqtt.packets import Properties
from mqtthub.mqtt.topics import topic_matches
from mqtthub.rabbitmq.ingest import IngestConsumer
from mqtthub.rabbitmq.live import LiveRelay
from mqtthub.rabbitmq.management import INGEST_POLICY, RECORDED_POLICY, Connection, Management
from mqtthub.rabbitmq.recorded import RecordedQueues
from mqtthub.rabbitmq.topics import DEFAULT_VHOST, internal_topic, routing_key, split_topic

logger = logging.getLogger(__name__)

PrincipalResolver = Callable[[str, str], Awaitable[Principal]]
"""Who a connection is, from its vhost and its user name inside it (``<vhost>:`` removed)."""


@dataclass(frozen=True, kw_only=True)
class RabbitConfig:
    """Where the cluster is and how the hub uses it.

    Attributes:
        amqp_url: ``amqp://user:password@host:port`` of the hub's account (an administrator); the path is ignored,
            the hub opens one connection per organization's vhost.
        management_url: base URL of the management HTTP API (``http://host:15672``), same account.
        ingest_queue: the name of the replicated queue every hub consumes device topics from, in every vhost.
        recorded_queue: the name of the replicated queue every hub consumes recorded filters from, in every vhost.
        prefetch: unacknowledged ingest messages one hub holds per vhost (bounded by the writer's batches).
        poll_interval: seconds between two listings of the cluster's MQTT connections.
    """

    amqp_url: str
    management_url: str
    ingest_queue: str = "mqtthub.ingest"
    recorded_queue: str = "mqtthub.recorded"
    prefetch: int = 500
    poll_interval: float = 2.0


@dataclass(eq=False)
class _Subscription:
    topic_filter: str
    callback: Callable[[BrokerMessage], None]
    binding: str = ""


@dataclass
class _Vhost:
    """The hub's AMQP connection to one vhost and what runs on it."""

    connection: AbstractRobustConnection
    exchange: AbstractExchange
    subscriptions_queue: AbstractQueue
    ingest: IngestConsumer
    subscriptions: list[_Subscription] = field(default_factory=list)
    bindings: dict[str, int] = field(default_factory=dict)


class RabbitBroker:
    """The hub's side of a RabbitMQ cluster; ``async with RabbitBroker(config, sink=...) as broker``."""

    def __init__(
        self,
        config: RabbitConfig,
        *,
        sink: MessageSink,
        organizations: Callable[[], Awaitable[list[str]]],
        resolve: PrincipalResolver,
        forget: Callable[[str], None],
        relay: LiveRelay | None = None,
    ) -> None:
        self.config = config
        self.relay = relay
        """Carries live events between the hubs, on the default vhost's connection."""
        self.state = BrokerState.CREATED
        self._sink = sink
        self._organizations = organizations
        self._resolve = resolve
        self._forget = forget
        parts = urlsplit(config.amqp_url)
        self._management = Management(config.management_url, parts.username or "guest", parts.password or "guest")
        self._vhosts: dict[str, _Vhost] = {}
        self._opening: dict[str, asyncio.Task[_Vhost]] = {}
        self._connections: list[tuple[Connection, Principal]] = []
        self._principals: dict[tuple[str, str], Principal] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._stats = BrokerStats(started_at=time.time())
        self.recorded = RecordedQueues(config.recorded_queue, prefetch=config.prefetch, connection_of=self._connection)
        """The recorded-filters queues this hub consumes and binds."""

    # --- life cycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self.state is not BrokerState.CREATED:
            raise StateError(f"a RabbitMQ broker handle can be opened only once (it is {self.state.value})")
        self.state = BrokerState.STARTING
        try:
            for short_id in await self._organizations():
                await self.add_organization(short_id)
            await self._vhost(DEFAULT_VHOST)
            await self._refresh_connections()
        except BaseException:
            await self._close()
            raise
        self._spawn(self._poll_connections(), "rabbitmq-connections")
        self._spawn(self.recorded.run(), "rabbitmq-recorded-bindings")
        self.state = BrokerState.RUNNING
        logger.info("RabbitMQ broker ready (%d vhosts)", len(self._vhosts))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._close()

    async def _close(self) -> None:
        self.state = BrokerState.CLOSING
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.relay is not None:
            await self.relay.stop()
        for vhost in self._vhosts.values():
            # Stop taking messages first: what is unacknowledged goes back to the queue for the other hubs.
            await vhost.ingest.stop()
        await self.recorded.stop()
        for vhost in self._vhosts.values():
            await vhost.connection.close()
        self._vhosts.clear()
        await self._management.aclose()
        self.state = BrokerState.CLOSED

    def _spawn(self, work: Awaitable[None], name: str) -> None:
        task = asyncio.ensure_future(work)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("%s failed: %s", task.get_name(), task.exception())

    # --- vhosts ----------------------------------------------------------------------------------

    async def add_organization(self, short_id: str) -> None:
        """Make sure the organization's vhost exists and the hub consumes and publishes there."""
        vhost, _ = split_topic(f"org/{short_id}/x")
        await self._vhost(vhost)

    def organization_added(self, short_id: str) -> None:
        """Start :meth:`add_organization` in the background (for change handlers, which cannot wait)."""
        self._spawn(self.add_organization(short_id), f"rabbitmq-vhost-{short_id}")

    async def _vhost(self, name: str) -> _Vhost:
        if (ready := self._vhosts.get(name)) is not None:
            return ready
        opening = self._opening.get(name)
        if opening is None:
            opening = asyncio.ensure_future(self._open_vhost(name))
            self._opening[name] = opening
        try:
            return await asyncio.shield(opening)
        finally:
            if opening.done():
                self._opening.pop(name, None)

    async def _open_vhost(self, name: str) -> _Vhost:
        await self._management.ensure_vhost(
            name, queues={INGEST_POLICY: self.config.ingest_queue, RECORDED_POLICY: self.config.recorded_queue}
        )
        parts = urlsplit(self.config.amqp_url)
        url = urlunsplit((parts.scheme, parts.netloc, "/" + quote(name, safe=""), parts.query, ""))
        try:
            connection = await aio_pika.connect_robust(url, client_properties={"connection_name": "mqtthub"})
        except (OSError, aio_pika.exceptions.AMQPError) as exc:
            raise UnavailableError(f"RabbitMQ unreachable over AMQP: {exc}") from exc
        publishing: AbstractChannel = await connection.channel(publisher_confirms=True)
        exchange = await publishing.get_exchange("amq.topic")
        consuming = await connection.channel()
        queue = await consuming.declare_queue(exclusive=True, auto_delete=True)
        await queue.consume(lambda message: self._deliver(name, message), no_ack=True)
        ingest = IngestConsumer(connection, name, self.config.ingest_queue, self._sink, prefetch=self.config.prefetch)
        await ingest.start()
        if name == DEFAULT_VHOST and self.relay is not None:
            await self.relay.start(connection)
        vhost = _Vhost(connection, exchange, queue, ingest)
        self._vhosts[name] = vhost
        self.recorded.vhost_opened(name, connection)
        return vhost

    # --- recorded filters (see mqtthub.rabbitmq.recorded) -----------------------------------------

    def record_into(self, sink: MessageSink) -> None:
        """Consume every organization's recorded-filters queue from now on, each message handed to ``sink`` and
        acknowledged once its future resolves (see :mod:`mqtthub.messaging.shared`)."""
        self.recorded.record_into(sink)

    def bind_recorded(self, topic_filter: str) -> None:
        """Bind an organization's recorded filter to its vhost's shared queue, in the background."""
        self.recorded.bind(topic_filter)

    def unbind_recorded(self, topic_filter: str) -> None:
        """Unbind it, in the background (what is queued already is still recorded)."""
        self.recorded.unbind(topic_filter)

    async def _connection(self, vhost: str) -> AbstractRobustConnection:
        return (await self._vhost(vhost)).connection

    # --- publishing and subscriptions ------------------------------------------------------------

    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 0,
        retain: bool = False,
        properties: Properties | None = None,
        on_delivered: Callable[[str], None] | None = None,
    ) -> None:
        """Publish to ``amq.topic`` in the topic's vhost, confirmed by the cluster.

        RabbitMQ's MQTT plugin delivers it to MQTT subscribers at ``min(qos, their QoS)``. ``retain`` is not
        carried (the plugin keeps retained messages only for what MQTT clients publish, per node), nor are MQTT
        5.0 properties, and no delivery is reported to ``on_delivered``: RabbitMQ does not tell a publisher.
        """
        self._require_running()
        vhost_name, inner = split_topic(topic)
        vhost = await self._vhost(vhost_name)
        message = aio_pika.Message(
            payload,
            headers={"x-mqtt-publish-qos": qos, "x-mqtt-dup": False},
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT if qos else aio_pika.DeliveryMode.NOT_PERSISTENT,
        )
        try:
            await vhost.exchange.publish(message, routing_key=routing_key(inner))
        except aio_pika.exceptions.AMQPError as exc:
            raise UnavailableError(f"RabbitMQ did not take the message: {exc}") from exc
        self._stats.messages_sent += 1

    def subscribe(self, topic_filter: str, callback: Callable[[BrokerMessage], None]) -> _Subscription:
        """Bind ``topic_filter`` to this hub's queue in its vhost; ``callback`` gets every matching message.

        A filter must lie inside one vhost (an organization's namespace, or outside every organization): RabbitMQ
        routes within a vhost only. Shared subscriptions are not offered.
        """
        self._require_running()
        vhost_name, inner = split_topic(topic_filter)
        if topic_filter.startswith("$share/") or (vhost_name == DEFAULT_VHOST and topic_filter.startswith("org/")):
            raise UnavailableError(f"RabbitMQ cannot route {topic_filter!r}: a filter must stay in one organization")
        subscription = _Subscription(topic_filter, callback, routing_key(inner))
        self._spawn(self._bind(vhost_name, subscription), "rabbitmq-bind")
        return subscription

    async def _bind(self, vhost_name: str, subscription: _Subscription) -> None:
        vhost = await self._vhost(vhost_name)
        vhost.subscriptions.append(subscription)
        count = vhost.bindings.get(subscription.binding, 0)
        vhost.bindings[subscription.binding] = count + 1
        if count == 0:
            await vhost.subscriptions_queue.bind("amq.topic", routing_key=subscription.binding)

    def unsubscribe(self, subscription: object) -> None:
        """Stop a subscription made with :meth:`subscribe`; unknown handles are ignored."""
        for vhost in self._vhosts.values():
            if subscription in vhost.subscriptions and isinstance(subscription, _Subscription):
                vhost.subscriptions.remove(subscription)
                vhost.bindings[subscription.binding] -= 1
                if vhost.bindings[subscription.binding] == 0:
                    del vhost.bindings[subscription.binding]
                    self._spawn(self._unbind(vhost.subscriptions_queue, subscription.binding), "rabbitmq-unbind")
                return

    @staticmethod
    async def _unbind(queue: AbstractQueue, binding: str) -> None:
        await queue.unbind("amq.topic", routing_key=binding)

    async def _deliver(self, vhost_name: str, incoming: AbstractIncomingMessage) -> None:
        vhost = self._vhosts.get(vhost_name)
        if vhost is None or incoming.routing_key is None:
            return
        topic = internal_topic(vhost_name, incoming.routing_key)
        qos = incoming.headers.get("x-mqtt-publish-qos", 0)
        message = BrokerMessage(topic, incoming.body, qos=qos if isinstance(qos, int) else 0, received_at=time.time())
        self._stats.messages_received += 1
        for subscription in list(vhost.subscriptions):
            if topic_matches(subscription.topic_filter, topic):
                try:
                    subscription.callback(message)
                except Exception:  # one subscriber's failure must not stop the others
                    self._stats.delivery_failed += 1
                    logger.exception("a subscriber of %s failed", subscription.topic_filter)

    # --- clients ---------------------------------------------------------------------------------

    async def _poll_connections(self) -> None:
        while True:
            await asyncio.sleep(self.config.poll_interval)
            try:
                # Organizations another hub created: their vhost exists, this hub joins its consumers too.
                for short_id in await self._organizations():
                    if short_id not in self._vhosts:
                        await self.add_organization(short_id)
                await self._refresh_connections()
            except UnavailableError as exc:
                logger.warning("RabbitMQ management API: %s", exc)

    async def _refresh_connections(self) -> None:
        listed = []
        for connection in await self._management.connections():
            vhost, _, name = connection.user.rpartition(":")
            key = (vhost or connection.vhost, name)
            principal = self._principals.get(key)
            if principal is None:
                principal = await self._resolve(*key)
                self._principals[key] = principal
            listed.append((connection, principal))
        self._connections = listed
        self._stats.clients_connected = len(listed)

    def kick(self, *, client_id: str | None = None, principal_id: str | None = None, reason_code: int = 0x98) -> int:
        """Close matching connections through the management API (in the background); return how many.

        RabbitMQ's MQTT plugin speaks 3.1.1 only, so the client sees its connection closed, with no reason code;
        it may reconnect, and is let in again only if the auth backend still accepts it.
        """
        if client_id is None and principal_id is None:
            return 0
        matched = [
            connection
            for connection, principal in self._connections
            if (client_id is None or connection.client_id == client_id)
            and (principal_id is None or principal.id == principal_id)
        ]
        for connection in matched:
            self._spawn(self._management.close_connection(connection.name, f"mqtthub: 0x{reason_code:02x}"), "kick")
        if principal_id is not None:
            self._principals = {key: each for key, each in self._principals.items() if each.id != principal_id}
        self._connections = [entry for entry in self._connections if entry[0] not in matched]
        self._stats.kicked += len(matched)
        return len(matched)

    def discard_sessions(self, principal_id: str, reason_code: int = 0x87) -> int:
        """Disconnect the principal's clients (their sessions are RabbitMQ's; a new CONNECT is checked again)."""
        count = self.kick(principal_id=principal_id, reason_code=reason_code)
        self._stats.sessions_discarded += count
        return count

    def clients(self) -> list[tuple[str, Principal]]:
        """The client id and principal of every MQTT connection of the cluster, as of the last listing."""
        return [(connection.client_id, principal) for connection, principal in self._connections]

    def connections(self) -> list[ClientInfo]:
        """Every MQTT connection of the cluster as of the last listing (the management API lists no subscriptions)."""
        return [
            ClientInfo(
                client_id=connection.client_id,
                principal=principal,
                protocol=f"{connection.protocol} ({connection.node})",
            )
            for connection, principal in self._connections
        ]

    def retained(self, topic_filter: str) -> list[BrokerMessage]:
        """Refused: RabbitMQ keeps retained messages in its own store, which no API lists."""
        raise UnavailableError("retained messages are kept by the RabbitMQ cluster, which does not list them")

    def offline_sessions(self) -> list[Principal]:
        """Always empty: RabbitMQ keeps persistent sessions, and checks their owner again when they reconnect."""
        return []

    def invalidate(self, principal_id: str) -> None:
        """Forget the principal's remembered credentials and connections: its next CONNECT goes to the database."""
        self._forget(principal_id)
        self._principals = {key: each for key, each in self._principals.items() if each.id != principal_id}

    def connected_count(self) -> int:
        """The clients of the cluster found at the last listing."""
        return self._stats.clients_connected

    def stats(self) -> BrokerStats:
        """The hub's own counters over the cluster (messages it published and routed, clients listed)."""
        return replace(
            self._stats,
            messages_received=self._stats.messages_received + sum(v.ingest.received for v in self._vhosts.values()),
            subscriptions=sum(len(vhost.subscriptions) for vhost in self._vhosts.values()),
        )

    def _require_running(self) -> None:
        if self.state is not BrokerState.RUNNING:
            raise StateError(f"the RabbitMQ broker handle is not running (it is {self.state.value})")
