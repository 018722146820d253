"""The embedded MQTT broker: life cycle, listeners, background loops and the hub-facing API."""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Self

from mqtthub.broker.config import BrokerConfig
from mqtthub.broker.connection_state import ConnectionState
from mqtthub.broker.core import BrokerCore, LocalSubscriber
from mqtthub.broker.handle import LocalSubscription
from mqtthub.broker.hooks import Authenticator, Authorizer, BrokerMessage, BrokerObserver, MessageSink, Principal
from mqtthub.broker.inspection import ClientInfo, SubscriptionInfo
from mqtthub.broker.listeners import Listener, start_listener
from mqtthub.broker.persistence import StateJournal, StateStore
from mqtthub.broker.restore import restore
from mqtthub.broker.retained import InMemoryRetainedStore, RetainedStore
from mqtthub.broker.stats import BrokerStats
from mqtthub.broker.subscriptions import Subscription
from mqtthub.broker.sys_topics import run_sys_topics
from mqtthub.errors import StateError
from mqtthub.mqtt.packets import Properties
from mqtthub.mqtt.reason_codes import ReasonCode
from mqtthub.mqtt.topics import parse_shared, validate_topic_name

logger = logging.getLogger(__name__)

_SHUTDOWN_GRACE = 1.0
_PROTOCOLS = {3: "MQTT 3.1", 4: "MQTT 3.1.1", 5: "MQTT 5.0"}


class BrokerState(enum.Enum):
    """Life cycle of a :class:`Broker`; each state is entered once, in this order."""

    CREATED = "created"
    STARTING = "starting"
    RUNNING = "running"
    CLOSING = "closing"
    CLOSED = "closed"


class Broker:
    """An MQTT 3.1.1 / 5.0 broker inside the hub's event loop.

    Use it as an async context manager; it binds every configured listener on
    entry (``port=0`` binds an ephemeral port, see :attr:`addresses`) and on exit
    disconnects every client (5.0 clients get DISCONNECT 0x8B) and stops its
    background tasks (housekeeping, ``$SYS``), which all run in one task group.

    Args:
        config: Listeners and limits.
        authenticator: Turns CONNECT into a principal.
        authorizer: Decides publish/subscribe rights; answers are cached per connection.
        sink: Receives every PUBLISH accepted from a client.
        observer: Told about connects and disconnects.
        retained_store: Where retained messages live (in memory by default).
        state_store: Where retained messages and persistent sessions are kept between runs (read back on
            entry, written as they change, see :mod:`mqtthub.broker.persistence`); ``None`` keeps them in
            memory only. Its owner opens and closes it.
    """

    def __init__(
        self,
        config: BrokerConfig,
        *,
        authenticator: Authenticator,
        authorizer: Authorizer,
        sink: MessageSink | None = None,
        observer: BrokerObserver | None = None,
        retained_store: RetainedStore | None = None,
        state_store: StateStore | None = None,
    ) -> None:
        self.config = config
        self._authenticator = authenticator
        self._authorizer = authorizer
        self._sink = sink
        self._observer = observer
        self._retained: RetainedStore = retained_store if retained_store is not None else InMemoryRetainedStore()
        self._state = BrokerState.CREATED
        self._task_group: asyncio.TaskGroup | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._core: BrokerCore | None = None
        self._journal: StateJournal | None = None
        if state_store is not None:
            self._journal = StateJournal(state_store, mode=config.persistence, interval=config.persistence_interval)
        self._listeners: list[Listener] = []

    @property
    def state(self) -> BrokerState:
        """Where the broker is in its life cycle."""
        return self._state

    @property
    def addresses(self) -> dict[str, tuple[str, int]]:
        """The (host, port) each listener is bound to, by listener name."""
        return {listener.config.name: listener.address for listener in self._listeners}

    async def __aenter__(self) -> Self:
        """Bind the listeners and start the background tasks."""
        if self._state is not BrokerState.CREATED:
            raise StateError(f"broker cannot be started: it is {self._state.value}")
        self._state = BrokerState.STARTING
        self._task_group = asyncio.TaskGroup()
        await self._task_group.__aenter__()
        core = self._core = BrokerCore(
            self.config,
            authenticator=self._authenticator,
            authorizer=self._authorizer,
            sink=self._sink,
            observer=self._observer,
            retained=self._retained,
            spawn=self._spawn,
            journal=self._journal,
        )
        try:
            if self._journal is not None:
                restore(core, self._journal, await self._journal.store.read())
                self._spawn(self._journal.run(), "mqtt-state-journal")
            for listener_config in self.config.listeners:
                self._listeners.append(await start_listener(listener_config, core))
        except BaseException:
            await self._stop()
            raise
        self._spawn(self._housekeeping(core), "mqtt-housekeeping")
        if self.config.sys_interval > 0:
            self._spawn(run_sys_topics(core, self.config.sys_interval), "mqtt-sys-topics")
        self._state = BrokerState.RUNNING
        logger.info("broker listening on %s", ", ".join(f"{n}={h}:{p}" for n, (h, p) in self.addresses.items()))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Disconnect everyone and stop; see the class docstring."""
        await self.close()

    async def close(self) -> None:
        """Same as leaving the ``async with`` block; closing twice is a no-op."""
        if self._state in (BrokerState.CLOSING, BrokerState.CLOSED):
            return
        if self._state is BrokerState.CREATED:
            self._state = BrokerState.CLOSED
            return
        await self._stop()

    async def _stop(self) -> None:
        self._state = BrokerState.CLOSING
        core = self._core
        if core is not None:
            core.shutdown()
            try:
                await asyncio.wait_for(core.drained.wait(), _SHUTDOWN_GRACE)
            except TimeoutError:
                logger.warning("%d connections still open at shutdown", len(core.connections))
        for listener in self._listeners:
            await listener.close()
        for task in list(self._tasks):
            task.cancel()
        if self._task_group is not None:
            await self._task_group.__aexit__(None, None, None)
        if self._journal is not None:
            await self._journal.close()
        self._state = BrokerState.CLOSED
        logger.info("broker stopped")

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        if self._task_group is None or self._state is BrokerState.CLOSED:
            coro.close()
            raise StateError("broker is not running")
        task = self._task_group.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _housekeeping(self, core: BrokerCore) -> None:
        while True:
            await asyncio.sleep(self.config.housekeeping_interval)
            core.housekeeping()

    def _running(self) -> BrokerCore:
        if self._state is not BrokerState.RUNNING or self._core is None:
            raise StateError(f"broker is not running: it is {self._state.value}")
        return self._core

    # -- BrokerHandle -----------------------------------------------------------------------------------------

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
        """Publish as the hub to a full internal topic; not offered to the message sink.

        ``on_delivered`` is called with each subscriber's client id once it acknowledged the
        message (QoS 1/2) or it was written (QoS 0).
        """
        core = self._running()
        validate_topic_name(topic)
        if qos not in (0, 1, 2):
            raise ValueError(f"QoS must be 0, 1 or 2, not {qos}")
        message = BrokerMessage(topic, payload, qos, retain, properties, received_at=time.time())
        message.on_delivered = on_delivered
        core.route(message, None)

    def subscribe(self, topic_filter: str, callback: Callable[[BrokerMessage], None]) -> LocalSubscriber:
        """Call ``callback`` synchronously for each message matching a full internal filter."""
        core = self._running()
        group, plain = parse_shared(topic_filter)
        subscriber = LocalSubscriber(topic_filter, callback)
        core.trie.add(Subscription(subscriber, plain, qos=2, share_group=group))
        core.stats.subscriptions = len(core.trie)
        return subscriber

    def unsubscribe(self, subscription: LocalSubscription) -> None:
        """Stop a subscription made with :meth:`subscribe`; other handles are ignored."""
        core = self._running()
        if not isinstance(subscription, LocalSubscriber) or not subscription.active:
            return
        subscription.active = False
        group, plain = parse_shared(subscription.topic_filter)
        core.trie.remove(subscription, plain, group)
        core.stats.subscriptions = len(core.trie)

    def kick(
        self,
        *,
        client_id: str | None = None,
        principal_id: str | None = None,
        reason_code: int = ReasonCode.ADMINISTRATIVE_ACTION,
    ) -> int:
        """Disconnect clients matching a client id and/or principal id; return how many."""
        if client_id is None and principal_id is None:
            raise ValueError("kick needs client_id or principal_id")
        return self._running().kick(client_id, principal_id, reason_code)

    def clients(self) -> list[tuple[str, Principal]]:
        """The client id and principal of every connected client."""
        return [
            (conn.client_id, conn.principal)
            for conn in self._running().connections
            if conn.state is ConnectionState.CONNECTED and conn.principal is not None
        ]

    def connections(self) -> list[ClientInfo]:
        """Every connected client with its address, protocol and subscriptions (a snapshot)."""
        # Connections remember when they opened on the monotonic clock; shown as wall-clock time.
        offset = time.time() - time.monotonic()
        listed = []
        for conn in self._running().connections:
            if conn.state is not ConnectionState.CONNECTED or conn.principal is None:
                continue
            session = conn.session
            subscriptions = (
                ()
                if session is None
                else tuple(
                    SubscriptionInfo(each.topic_filter, each.qos, each.share_group)
                    for each in session.subscriptions.values()
                )
            )
            protocol = _PROTOCOLS.get(conn.protocol_level, f"MQTT level {conn.protocol_level}")
            listed.append(
                ClientInfo(
                    client_id=conn.client_id,
                    principal=conn.principal,
                    protocol=f"{protocol} ({conn.listener})",
                    peer=conn.peer,
                    connected_at=conn.created_at + offset,
                    subscriptions=subscriptions,
                    queued=len(session.queue or ()) if session is not None else 0,
                )
            )
        return listed

    def retained(self, topic_filter: str) -> list[BrokerMessage]:
        """The retained messages whose (internal) topic matches ``topic_filter`` [MQTT-3.3.1-6]."""
        return list(self._running().retained.matching(topic_filter))

    def offline_sessions(self) -> list[Principal]:
        """The owner of each session no client is connected to (persistent sessions, restored ones included)."""
        return [session.principal for session in self._running().sessions.values() if session.link is None]

    def discard_sessions(self, principal_id: str, reason_code: int = ReasonCode.NOT_AUTHORIZED) -> int:
        """End every session of a principal, online or offline, without its will; return how many."""
        return self._running().discard_sessions(principal_id, reason_code)

    def invalidate(self, principal_id: str) -> None:
        """Drop cached authenticator and authorizer answers of a principal (after its rights changed)."""
        self._running().invalidate(principal_id)

    def connected_count(self) -> int:
        """See :class:`~mqtthub.broker.handle.BrokerHandle`."""
        return self._running().stats.clients_connected

    def stats(self) -> BrokerStats:
        """A snapshot of the counters; session queue depths are summed here, O(sessions)."""
        core = self._running()
        core.stats.sessions = len(core.sessions)
        core.stats.retained_messages = len(core.retained)
        depths = [len(session.queue or ()) for session in core.sessions.values()]
        core.stats.queued_messages = sum(depths)
        core.stats.session_queue_max = max(depths, default=0)
        journal = self._journal
        if journal is not None:
            core.stats.state_batches_written = journal.batches_written
            core.stats.state_write_failures = journal.write_failures
            core.stats.state_write_error = journal.last_error
        return core.stats.snapshot()
