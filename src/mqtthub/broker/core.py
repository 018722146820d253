"""The broker's shared state and routing: connections, sessions, subscriptions, retained messages, wills.

:class:`BrokerCore` is what connections talk to. It has no life cycle of its own:
:class:`mqtthub.broker.server.Broker` owns it, binds listeners for it and runs its
housekeeping.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, cast

from mqtthub.broker.config import BrokerConfig
from mqtthub.broker.connection import Connection
from mqtthub.broker.connection_state import ConnectionState
from mqtthub.broker.episodes import EpisodeLog
from mqtthub.broker.hooks import (
    Action,
    Authenticator,
    Authorizer,
    BrokerMessage,
    BrokerObserver,
    MessageSink,
    Principal,
)
from mqtthub.broker.persistence import StateJournal
from mqtthub.broker.retained import RetainedStore
from mqtthub.broker.session import EncodeCache, Outgoing, Session, SessionKey
from mqtthub.broker.stats import BrokerStats
from mqtthub.broker.subscriptions import SharedGroup, Subscription, SubscriptionTrie
from mqtthub.mqtt.packets import Will
from mqtthub.mqtt.reason_codes import ReasonCode

logger = logging.getLogger(__name__)
episodes = EpisodeLog()

Spawn = Callable[[Coroutine[Any, Any, None], str], asyncio.Task[None]]


class LocalSubscriber:
    """An in-process consumer (the hub) subscribed through :meth:`Broker.subscribe`.

    Messages are handed over synchronously, at the publisher's QoS, with the full internal topic.
    """

    def __init__(self, topic_filter: str, callback: Callable[[BrokerMessage], None]) -> None:
        self.topic_filter = topic_filter
        self.callback = callback
        self.active = True

    @property
    def online(self) -> bool:
        """Always reachable while subscribed."""
        return self.active

    def deliver(self, out: Outgoing, cache: EncodeCache | None = None) -> None:
        """Call the callback; its failures are logged, never propagated into routing."""
        try:
            self.callback(out.message)
        except Exception:
            logger.exception("in-process subscriber to %s failed", self.topic_filter)


class BrokerCore:
    """Connections, sessions and routing (see the module docstring)."""

    def __init__(
        self,
        config: BrokerConfig,
        *,
        authenticator: Authenticator,
        authorizer: Authorizer,
        sink: MessageSink | None,
        observer: BrokerObserver | None,
        retained: RetainedStore,
        spawn: Spawn,
        journal: StateJournal | None = None,
    ) -> None:
        self.config = config
        self.authenticator = authenticator
        self.authorizer = authorizer
        self.sink = sink
        self.observer = observer
        self.retained = retained
        self.journal = journal
        """Where state changes of retained messages and stored sessions are recorded; ``None``: memory only."""
        self.stats = BrokerStats(started_at=time.time())
        self.trie = SubscriptionTrie()
        self.connections: set[Connection] = set()
        self.sessions: dict[SessionKey, Session] = {}
        self.accepting = True
        self.drained = asyncio.Event()
        """Set once shutting down and every connection is gone."""
        self.holding: set[Session] = set()
        """Sessions holding acknowledgements back until their queue is worked down; bounded in time by housekeeping."""
        self._spawn = spawn
        self._loop = asyncio.get_running_loop()
        self._rate_tokens = config.max_connection_rate
        self._rate_updated = time.monotonic()

    def spawn(self, coro: Coroutine[Any, Any, None], *, name: str) -> asyncio.Task[None]:
        """Run a coroutine as a named task of the broker's task group."""
        return self._spawn(coro, name)

    # -- connections --------------------------------------------------------------------------------------

    def admit(self, conn: Connection) -> bool:
        """Apply the connection count and rate limits to a new socket."""
        if not self.accepting:
            return False
        now = time.monotonic()
        rate = self.config.max_connection_rate
        self._rate_tokens = min(rate, self._rate_tokens + (now - self._rate_updated) * rate)
        self._rate_updated = now
        if len(self.connections) >= self.config.max_connections or self._rate_tokens < 1:
            self.stats.connections_rejected += 1
            episodes(
                logger,
                logging.WARNING,
                "admit",
                "connection from %s rejected: connection limit or rate exceeded",
                conn.peer,
            )
            return False
        self._rate_tokens -= 1
        self.connections.add(conn)
        return True

    def held_by_another(self, client_id: str, principal: Principal) -> bool:
        """Whether a session with this client id belongs to another identity of the same namespace.

        A session belongs to the identity that created it: another identity may neither resume it nor
        take its connection over (the hub's security model; the spec leaves authorization to the server,
        [MQTT-3.1.4-2], [MQTT-5.4.2]).
        """
        session = self.sessions.get((principal.mountpoint, client_id))
        return session is not None and session.principal.id != principal.id

    def attach(
        self, conn: Connection, client_id: str, principal: Principal, *, clean_start: bool, expiry: int
    ) -> tuple[Session, bool]:
        """Give a connection its session, taking over an existing connection with the same id [MQTT-3.1.4-3]."""
        key = (principal.mountpoint, client_id)
        session = self.sessions.get(key)
        if session is not None and session.link is not None:
            old = cast(Connection, session.link)
            old.close(ReasonCode.SESSION_TAKEN_OVER, "session taken over")
            self._detach(old, session)
            session = self.sessions.get(key)  # detaching ends a session whose expiry interval is 0
        if session is not None and clean_start:
            self.discard_session(session)
            session = None
        present = session is not None
        if session is None:
            session = Session(key, principal, max_queued=self.config.max_queued_messages, stats=self.stats)
            self.sessions[key] = session
        for timer in (session.expiry_timer, session.will_timer):
            if timer is not None:
                timer.cancel()  # a will delayed past a reconnect is not sent [MQTT-3.1.3-9]
        session.expiry_timer = session.will_timer = None
        session.will = session.will_at = None
        session.principal = principal
        session.expiry_interval = expiry
        session.disconnected_at = None
        session.link = conn
        journal = self.journal
        if journal is not None:
            if expiry:
                session.journal = journal
                journal.session_changed(session)
            elif session.journal is not None:
                session.journal = None  # ends with this connection: nothing to keep [MQTT-3.1.2-5]
                journal.session_discarded(session)
        return session, present

    def connected(self, conn: Connection) -> None:
        """CONNACK sent: count and tell the observer."""
        self.stats.clients_connected += 1
        self.stats.clients_total += 1
        if self.observer is not None and conn.principal is not None:
            self._notify(self.observer.client_connected, conn.client_id, conn.principal)

    def connection_closed(self, conn: Connection) -> None:
        """Socket closed: will, shared-message hand-over, session expiry, observer."""
        self.connections.discard(conn)
        if not self.accepting and not self.connections:
            self.drained.set()
        session = conn.session
        if session is None or session.link is not conn:
            return
        self._detach(conn, session)

    def _detach(self, conn: Connection, session: Session) -> None:
        session.link = None
        session.release_held()  # an offline session holds no publisher back
        conn.session = None
        self.stats.clients_connected -= 1
        principal = session.principal
        if self.observer is not None:
            self._notify(
                self.observer.client_disconnected, conn.client_id, principal, conn.close_reason, graceful=conn.graceful
            )
        will, conn.will = conn.will, None
        if will is not None:
            delay = will.properties.will_delay_interval if will.properties is not None else None
            delay = min(delay or 0, session.expiry_interval)
            session.will = will
            if delay:
                session.will_at = time.time() + delay
                session.will_timer = self._loop.call_later(delay, self._publish_will, session)
            else:
                self._publish_will(session)
        self._hand_over_shared(session)
        session.disconnected_at = time.time()
        session.changed()
        if session.expiry_interval == 0:
            self.discard_session(session)
        elif self.accepting:
            session.expiry_timer = self._loop.call_later(session.expiry_interval, self._expire, session)

    def resume_timers(self, session: Session, now: float) -> bool:
        """Timers of a restored session: expiry from its last disconnect, the will when due.

        Returns False (after publishing a will that fell due) if the session expired meanwhile.
        """
        assert session.disconnected_at is not None
        remaining = session.disconnected_at + session.expiry_interval - now
        will_in = None if session.will is None else max(0.0, (session.will_at or now) - now)
        if remaining <= 0 or will_in == 0:
            self._publish_will(session)
        elif will_in is not None:
            session.will_timer = self._loop.call_later(will_in, self._publish_will, session)
        if remaining <= 0:
            return False
        session.expiry_timer = self._loop.call_later(remaining, self._expire, session)
        return True

    def _expire(self, session: Session) -> None:
        session.expiry_timer = None
        if session.link is None:
            self.discard_session(session)

    def discard_session(self, session: Session) -> None:
        """End a session: its subscriptions and held messages go [MQTT-4.1.0-2], from the state store too."""
        journal, session.journal = session.journal, None
        if journal is not None:
            journal.session_discarded(session)
        if self.sessions.get(session.key) is session:
            del self.sessions[session.key]
        if session.expiry_timer is not None:
            session.expiry_timer.cancel()
            session.expiry_timer = None
        if session.will is not None:
            self._publish_will(session)  # the session ends before the will delay: send it now [MQTT-3.1.3-9]
        for sub in list(session.subscriptions.values()):
            self.unsubscribe(session, sub.topic_filter, sub.share_group)
        self._hand_over_shared(session)
        session.queue = None
        session.inflight.clear()

    def _hand_over_shared(self, leaving: Session, only: SharedGroup | None = None) -> None:
        # Unacknowledged messages of a shared-group member that goes offline or leaves the group are
        # re-sent to another member, online ones first; with no other member they stay where they were.
        for out in leaving.take_shared(only):
            group = out.group
            assert group is not None
            sub = group.pick(exclude=leaving)
            out.packet_id = 0
            if sub is None:
                leaving.deliver(out)
                continue
            out.qos = min(out.message.qos, sub.qos)
            sub.subscriber.deliver(out)

    def _publish_will(self, session: Session) -> None:
        will, session.will = session.will, None
        session.will_at = None
        if session.will_timer is not None:
            session.will_timer.cancel()
            session.will_timer = None
        if will is None:
            return
        session.changed()
        self.spawn(self._authorize_will(session.principal, session.client_id, will), name=f"mqtt-will:{will.topic}")

    async def _authorize_will(self, principal: Principal, client_id: str, will: Will) -> None:
        try:
            allowed = not will.topic.startswith("$") and await self.authorizer.authorize(
                principal, Action.PUBLISH, will.topic
            )
        except Exception:
            logger.exception("authorizer failed for the will of %s", client_id)
            allowed = False
        if not allowed:
            self.stats.publish_denied += 1
            logger.info("will of client %s to %s denied", client_id, will.topic)
            return
        message = BrokerMessage(
            topic=principal.mountpoint + will.topic,
            payload=will.payload,
            qos=will.qos,
            retain=will.retain,
            properties=will.properties,
            publisher_client_id=client_id,
            publisher=principal,
            received_at=time.time(),
        )
        if self.sink is not None:
            self.sink.offer(message)
        self.route(message, None)

    # -- subscriptions and routing -------------------------------------------------------------------------

    def subscribe(self, session: Session, subscription: Subscription) -> bool:
        """Add or replace a session's subscription; True if it replaced one."""
        session.subscriptions[(subscription.share_group, subscription.topic_filter)] = subscription
        replaced = self.trie.add(subscription)
        self.stats.subscriptions = len(self.trie)
        session.changed()
        return replaced

    def unsubscribe(self, session: Session, topic_filter: str, share_group: str | None) -> bool:
        """Remove a session's subscription; messages it held for a shared group go to another member."""
        if session.subscriptions.pop((share_group, topic_filter), None) is None:
            return False
        group = self.trie.group(topic_filter, share_group) if share_group is not None else None
        self.trie.remove(session, topic_filter, share_group)
        self.stats.subscriptions = len(self.trie)
        session.changed()
        if group is not None:
            self._hand_over_shared(session, group)
        return True

    def route(self, message: BrokerMessage, origin: Session | None) -> Session | None:
        """Store a retained message and deliver to every matching subscription [MQTT-3.3.4].

        Returns a connected session whose queue the message left backlogged, if any: the publisher's
        acknowledgement should wait for it (see :mod:`mqtthub.broker.session`).
        """
        if message.retain:
            self.retained.set(message)
            if self.journal is not None and not message.topic.startswith("$"):  # $SYS is rebuilt, not kept
                self.journal.retained_changed(message)
        result = self.trie.match(message.topic)
        if not result.targets and not result.groups:
            return None
        backlogged: Session | None = None
        cache: EncodeCache = {}
        qos = message.qos
        retained = message.retain
        for target in result.targets:
            subscriber = target.subscriber
            if target.no_local and subscriber is origin:
                continue  # [MQTT-3.8.3-3]
            granted = target.qos
            out = Outgoing(
                message,
                qos if qos < granted else granted,  # [MQTT-3.8.4-8]
                retained and target.retain_as_published,  # [MQTT-3.3.1-12], [MQTT-3.3.1-13]
                target.identifiers,
            )
            # One subscriber that cannot be served never stops the fan-out to the others
            # (try costs nothing until something raises).
            try:
                subscriber.deliver(out, cache)
            except Exception:
                self._delivery_failed(message.topic)
            if qos and isinstance(subscriber, Session) and subscriber.backlogged:
                backlogged = subscriber
        for group in result.groups:
            sub = group.pick()
            if sub is not None:
                ids = (sub.identifier,) if sub.identifier else ()
                member = sub.subscriber
                try:
                    member.deliver(Outgoing(message, min(qos, sub.qos), False, ids, group), cache)
                except Exception:
                    self._delivery_failed(message.topic)
                if qos and isinstance(member, Session) and member.backlogged:
                    backlogged = member
        return backlogged

    def hold(self, session: Session, release: Callable[[], None]) -> None:
        """Call ``release`` once ``session`` has worked its backlog down, or the hold outlasted its limit."""
        session.hold(release, time.monotonic())
        self.holding.add(session)
        self.stats.acks_held += 1

    def _delivery_failed(self, topic: str) -> None:
        self.stats.delivery_failed += 1
        episodes(
            logger, logging.ERROR, "delivery", "delivery on %.200s failed; the fan-out goes on", topic, exc_info=True
        )

    # -- administration -----------------------------------------------------------------------------------

    def kick(self, client_id: str | None, principal_id: str | None, reason_code: int) -> int:
        """Close connections matching a client id and/or a principal id; return how many."""
        count = 0
        for conn in list(self.connections):
            if conn.state is not ConnectionState.CONNECTED or conn.principal is None:
                continue
            if client_id is not None and conn.client_id != client_id:
                continue
            if principal_id is not None and conn.principal.id != principal_id:
                continue
            conn.close(reason_code, "kicked by administrator")
            count += 1
        self.stats.kicked += count
        return count

    def discard_sessions(self, principal_id: str, reason_code: int) -> int:
        """End every session of a principal, online or not, without its will; return how many.

        For an identity that stopped being valid (token revoked, device disabled or deleted, user
        deactivated, organization deleted): its connections close (5.0 clients get DISCONNECT
        ``reason_code``), and its subscriptions and queued messages go through :meth:`discard_session`.
        The will is dropped, since it would be published in the name of an identity no longer trusted.
        """
        sessions = [session for session in self.sessions.values() if session.principal.id == principal_id]
        for session in sessions:
            conn = cast("Connection | None", session.link)
            if conn is not None:
                conn.will = None
                conn.close(reason_code, "credentials no longer valid")
                self._detach(conn, session)
            session.will = None
            self.discard_session(session)
        self.stats.sessions_discarded += len(sessions)
        return len(sessions)

    def invalidate(self, principal_id: str) -> None:
        """Forget what the authenticator and the connections cached of a principal; re-check its subscriptions.

        Subscriptions, of online and offline sessions alike, are authorized again in a task; those now
        denied are removed (counted in ``subscriptions_revoked``), so narrowed rights also stop messages
        already flowing.
        """
        self.authenticator.forget(principal_id)
        for conn in self.connections:
            if conn.principal is not None and conn.principal.id == principal_id:
                conn.acl = None
                conn.acl_generation += 1
        sessions = [s for s in self.sessions.values() if s.principal.id == principal_id and s.subscriptions]
        if sessions:
            self.spawn(self._recheck_subscriptions(sessions), name=f"mqtt-recheck:{principal_id}")

    async def _recheck_subscriptions(self, sessions: list[Session]) -> None:
        for session in sessions:
            mount = len(session.mountpoint)
            for key, sub in list(session.subscriptions.items()):
                try:
                    allowed = await self.authorizer.authorize(
                        session.principal, Action.SUBSCRIBE, sub.topic_filter[mount:]
                    )
                except Exception:
                    logger.exception("authorizer failed re-checking %s of %s", sub.topic_filter, session.client_id)
                    allowed = False
                if not allowed and session.subscriptions.get(key) is sub:
                    self.unsubscribe(session, sub.topic_filter, sub.share_group)
                    self.stats.subscriptions_revoked += 1
                    logger.info("subscription %s of client %s revoked", sub.topic_filter, session.client_id)

    def housekeeping(self) -> None:
        """Close silent sockets, keep-alive timeouts [MQTT-3.1.2-24] and expired principals; end long holds."""
        now = time.monotonic()
        wall = time.time()
        for session in list(self.holding):
            if session.held is None:
                self.holding.discard(session)
            elif now - session.held_since >= self.config.publisher_hold_limit:
                self.stats.holds_given_up += 1
                episodes(
                    logger,
                    logging.WARNING,
                    ("hold", session.key),
                    "client %s has not worked its queue down in %.0f s: its publishers go on, its oldest messages"
                    " are dropped",
                    session.client_id,
                    self.config.publisher_hold_limit,
                )
                session.give_up_hold()
                self.holding.discard(session)
        for conn in list(self.connections):
            state = conn.state
            if state is ConnectionState.AWAITING_CONNECT or state is ConnectionState.CONNECTING:
                if now - conn.created_at > self.config.connect_timeout:
                    self.stats.connect_timeouts += 1
                    logger.info("no CONNECT from %s within %.1fs", conn.peer, self.config.connect_timeout)
                    conn.close(None, "connect timeout")
            elif state is ConnectionState.CONNECTED:
                if conn.keepalive and not conn.reading_paused and now - conn.last_received > conn.keepalive * 1.5:
                    self.stats.keepalive_timeouts += 1
                    logger.info("keep alive timeout: client %s (%s)", conn.client_id, conn.peer)
                    conn.close(ReasonCode.KEEP_ALIVE_TIMEOUT, "keep alive timeout")
                    continue
                principal = conn.principal
                if principal is not None and principal.expires_at is not None and wall >= principal.expires_at:
                    self.stats.expired_principals += 1
                    logger.info("credentials of client %s (%s) expired", conn.client_id, principal.id)
                    conn.close(ReasonCode.MAXIMUM_CONNECT_TIME, "credentials expired")

    def shutdown(self) -> None:
        """Stop accepting and close every connection; 5.0 clients get DISCONNECT 0x8B [MQTT-4.13]."""
        self.accepting = False
        if not self.connections:
            self.drained.set()
        for conn in list(self.connections):
            conn.will = None
            conn.close(ReasonCode.SERVER_SHUTTING_DOWN, "server shutting down")
        for session in list(self.sessions.values()):
            # A delayed will stays with its session: a stored session takes it into the next run.
            for timer in (session.expiry_timer, session.will_timer):
                if timer is not None:
                    timer.cancel()

    @staticmethod
    def _notify(callback: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        try:
            callback(*args, **kwargs)
        except Exception:
            logger.exception("broker observer failed")
