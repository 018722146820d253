"""A connector: one managed connection to an external broker, kept up and subscribed.

``async with Connector(options, topics=..., handler=...) as connector`` runs two named
tasks in one task group: ``supervise`` (connect, subscribe, wait for the end of the
connection, reconnect with jittered exponential backoff) and ``dispatch`` (hand each
received message to the handler, in order). paho's network thread does the socket I/O;
it hands messages over through a bounded inbox whose overflow policy is *stop reading*:
when the inbox is full the network thread waits, the socket is not read, and the broker's
flow control (and TCP) slow the sender down, so nothing is dropped.

Every connect, disconnect and error goes into the shared :class:`ConnectionStatus`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import enum
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.reasoncodes import ReasonCode

from mqtthub.background import backoff_delay
from mqtthub.broker.episodes import EpisodeLog
from mqtthub.client.connection import Connected, ConnectionOptions, ConnectRefused, close_client, connect
from mqtthub.client.tls import CertificateError
from mqtthub.db.base import utcnow
from mqtthub.errors import StateError, UnavailableError
from mqtthub.integrations.outbound import OutboundFence, OutboundRefused
from mqtthub.integrations.status import ConnectionStatus

logger = logging.getLogger(__name__)
episodes = EpisodeLog()
"""Failures that repeat per message are logged once per episode (see :mod:`mqtthub.broker.episodes`)."""


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A message received from the external broker."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    received_at: datetime = field(default_factory=utcnow)


MessageHandler = Callable[[InboundMessage], Awaitable[None]]


class ConnectorState(enum.Enum):
    """Life cycle of a :class:`Connector`."""

    CREATED = "created"
    RUNNING = "running"
    CLOSED = "closed"


def describe_failure(exc: BaseException) -> str:
    """The ``connection_error`` text for a failed connection attempt (never includes secrets)."""
    if isinstance(exc, ConnectRefused):
        return f"{exc}: {exc.details}"
    if isinstance(exc, OutboundRefused):
        return f"Connection {exc}"
    if isinstance(exc, CertificateError):
        return f"Certificate error: {exc}"
    if isinstance(exc, TimeoutError):
        return f"Connection failed: timed out ({exc})" if str(exc) else "Connection failed: timed out"
    return f"Connection failed: {exc}"


class _Link:
    """One established connection: the paho client and what its callbacks learn, owned by ``supervise``."""

    def __init__(self, connected: Connected) -> None:
        self.client = connected.client
        self.protocol = connected.protocol
        self.max_qos = connected.max_qos
        self.lost = asyncio.Event()
        self.lost_reason: str | None = None
        self.pending: dict[int, str] = {}
        self.active: set[str] = set()


class Connector:
    """A supervised connection to an external broker that subscribes to ``topics`` and reports its status.

    Args:
        options: Where and how to connect.
        topics: Topic filters (``$share/…`` allowed) mapped to their QoS; see :meth:`set_topics`.
        handler: Awaited for each message, in order; its exceptions are logged and never stop the connector.
        status: Where connects, disconnects, errors and message counts are recorded.
        reconnect_min: First backoff delay in seconds.
        reconnect_max: Longest backoff delay in seconds.
        inbox_size: Messages buffered between the network thread and the handler.
        name: Names the tasks and log lines.
        fence: Checks the broker's address before each connection attempt (None: no check).
    """

    def __init__(
        self,
        options: ConnectionOptions,
        *,
        topics: Mapping[str, int],
        handler: MessageHandler,
        status: ConnectionStatus,
        reconnect_min: float = 1.0,
        reconnect_max: float = 60.0,
        inbox_size: int = 1000,
        name: str = "connector",
        fence: OutboundFence | None = None,
    ) -> None:
        self._fence = fence
        self.options = options
        self.status = status
        self.state = ConnectorState.CREATED
        self._topics = dict(topics)
        self._handler = handler
        self._reconnect_min = reconnect_min
        self._reconnect_max = reconnect_max
        self._inbox: asyncio.Queue[InboundMessage] = asyncio.Queue(maxsize=inbox_size)
        self._name = name
        self._runner: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._link: _Link | None = None
        self._reconnect = asyncio.Event()
        self._closing = threading.Event()

    async def __aenter__(self) -> Connector:
        if self.state is not ConnectorState.CREATED:
            raise StateError(f"a connector can be started only once (it is {self.state.value})")
        self._loop = asyncio.get_running_loop()
        self.state = ConnectorState.RUNNING
        self._runner = asyncio.create_task(self._run(), name=self._name)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Disconnect and stop both tasks; idempotent."""
        if self.state is ConnectorState.CLOSED:
            return
        self.state = ConnectorState.CLOSED
        self._closing.set()
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)

    # --- control ---------------------------------------------------------------------------------------

    def set_topics(self, topics: Mapping[str, int]) -> None:
        """Make ``topics`` the subscribed set (a desired-state diff: subscribe the new, unsubscribe the gone)."""
        self._require_running()
        self._topics = dict(topics)
        if self._link is not None:
            self._sync_subscriptions(self._link)

    def reconnect(self) -> None:
        """Drop the current connection (if any) and connect again now, skipping any backoff wait."""
        self._require_running()
        self._reconnect.set()

    def publish(self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False) -> None:
        """Publish to the external broker over the current connection.

        Raises:
            UnavailableError: not connected right now.
        """
        self._require_running()
        link = self._link
        if link is None:
            raise UnavailableError("the connection to the remote broker is down")
        info = link.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise UnavailableError(f"publish to the remote broker failed: {paho.error_string(info.rc)}")

    def _require_running(self) -> None:
        if self.state is not ConnectorState.RUNNING:
            raise StateError(f"the connector is {self.state.value}")

    # --- tasks -----------------------------------------------------------------------------------------

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._supervise(), name=f"{self._name}:supervise")
            tasks.create_task(self._dispatch(), name=f"{self._name}:dispatch")

    async def _supervise(self) -> None:
        attempt = 0
        while True:
            self._reconnect.clear()
            try:
                connected = await self._connect()
            except (ConnectRefused, CertificateError, OSError, ValueError) as exc:
                error = describe_failure(exc)
                logger.warning("%s: %s", self._name, error)
                self.status.record_error(error)
                delay = backoff_delay(attempt, self._reconnect_min, self._reconnect_max)
                attempt += 1
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that
                # arrives together with reconnect(), and the connector would then never stop.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._reconnect.wait()
                continue
            attempt = 0
            await self._serve(_Link(connected))

    async def _connect(self) -> Connected:
        options = self.options
        if self._fence is not None:  # resolved at every attempt: the name may point elsewhere by now
            options = dataclasses.replace(options, address=await self._fence.resolve(options.host, options.port))
        # A plain executor future, not a task: one left running when the hub stops is not reported as destroyed.
        attempt = asyncio.get_running_loop().run_in_executor(None, connect, options, self._install_callbacks)
        try:
            return await asyncio.shield(attempt)
        except asyncio.CancelledError:
            attempt.add_done_callback(_close_in_background)
            raise

    async def _serve(self, link: _Link) -> None:
        self.status.record_connected(link.protocol, link.max_qos)
        logger.info("%s: connected to %s", self._name, self.options)
        self._link = link
        link.client.user_data_set(link)
        if not link.client.is_connected():  # lost before the callbacks could see the link
            _mark_lost(link, "Connection lost right after CONNACK")
        try:
            self._sync_subscriptions(link)
            lost = asyncio.ensure_future(link.lost.wait())
            asked = asyncio.ensure_future(self._reconnect.wait())
            try:
                await asyncio.wait([lost, asked], return_when=asyncio.FIRST_COMPLETED)
            finally:
                lost.cancel()
                asked.cancel()
        finally:
            self._link = None
            reason = link.lost_reason if link.lost.is_set() else None
            self.status.record_disconnected(reason)
            if reason:
                logger.warning("%s: %s", self._name, reason)
            await asyncio.shield(asyncio.to_thread(close_client, link.client))

    async def _dispatch(self) -> None:
        while True:
            message = await self._inbox.get()
            self.status.record_message()
            try:
                await self._handler(message)
            except Exception:  # a failing handler must never stop the connector
                episodes(
                    logger,
                    logging.ERROR,
                    ("handler", self._name),
                    "%s: message handler failed for topic %.200s",
                    self._name,
                    message.topic,
                    exc_info=True,
                )

    # --- subscriptions ---------------------------------------------------------------------------------

    def _sync_subscriptions(self, link: _Link) -> None:
        wanted = self._topics
        known = link.active | set(link.pending.values())
        for topic_filter in sorted(known - wanted.keys()):
            link.client.unsubscribe(topic_filter)
            if topic_filter in link.active:
                link.active.discard(topic_filter)
                self.status.record_unsubscribed()
        for topic_filter in sorted(wanted.keys() - known):
            result, mid = link.client.subscribe(topic_filter, qos=wanted[topic_filter])
            if result == paho.MQTT_ERR_SUCCESS and mid is not None:
                link.pending[mid] = topic_filter

    def _on_suback(self, link: _Link, mid: int, granted: list[int]) -> None:
        topic_filter = link.pending.pop(mid, None)
        if topic_filter is None or topic_filter not in self._topics:
            return
        if granted and granted[0] < 0x80:
            link.active.add(topic_filter)
            self.status.record_granted_qos(granted[0])
        else:
            error = f"Subscription to {topic_filter} refused (reason code {granted[0] if granted else '?'})"
            logger.warning("%s: %s", self._name, error)
            self.status.record_subscription_refused(error)

    # --- paho callbacks (network thread) -----------------------------------------------------------------

    def _install_callbacks(self, client: paho.Client) -> None:
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe

    def _on_message(self, client: paho.Client, link: Any, message: paho.MQTTMessage) -> None:
        assert self._loop is not None
        item = InboundMessage(message.topic, bytes(message.payload), message.qos, bool(message.retain))
        future = asyncio.run_coroutine_threadsafe(self._inbox.put(item), self._loop)
        while not self._closing.is_set():  # stop reading while the inbox is full
            try:
                future.result(timeout=0.5)
                return
            except concurrent.futures.TimeoutError:
                continue
        future.cancel()

    def _on_disconnect(
        self, client: paho.Client, link: Any, flags: paho.DisconnectFlags, reason: ReasonCode, properties: Any
    ) -> None:
        if not isinstance(link, _Link) or self._loop is None:
            return
        if flags.is_disconnect_packet_from_server:
            text = f"Disconnected by the broker: {reason.getName()}"
        elif reason.getName() == "Unspecified error":
            text = "Connection lost: the broker closed the connection or became unreachable"
        else:
            text = f"Connection lost: {reason.getName()}"
        self._loop.call_soon_threadsafe(_mark_lost, link, text)

    def _on_subscribe(self, client: paho.Client, link: Any, mid: int, reasons: list[ReasonCode], props: Any) -> None:
        if isinstance(link, _Link) and self._loop is not None:
            self._loop.call_soon_threadsafe(self._on_suback, link, mid, [reason.value for reason in reasons])


def _mark_lost(link: _Link, reason: str) -> None:
    link.lost_reason = reason
    link.lost.set()


def _close_in_background(attempt: asyncio.Future[Connected]) -> None:
    """A connection that completed after its connector was closed: close it without blocking the loop."""
    if attempt.cancelled() or attempt.exception() is not None:
        return
    threading.Thread(target=close_client, args=(attempt.result().client,), daemon=True).start()
