"""The small interfaces through which the hub plugs into the broker.

The broker knows nothing of HTTP or SQL. On CONNECT it asks an
:class:`Authenticator` for a :class:`Principal`; on PUBLISH and SUBSCRIBE it asks
an :class:`Authorizer` (answers cached per connection until
``Broker.invalidate(principal_id)``); every accepted PUBLISH is offered to a
:class:`MessageSink`; connection events go to :class:`BrokerObserver`.

Organization isolation is by construction: a principal carries a ``mountpoint``
(for example ``"org/3f2a/"``) that the broker prepends to every topic name and
filter the client uses and strips from every message delivered to it, so a
client of one organization cannot even name another organization's topics.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from mqtthub.mqtt.packets import Properties


class Action(enum.Enum):
    """What a principal wants to do with a topic.

    ``RETAINED`` is asked per retained message a new subscription would send (the topic is the
    message's, as the client sees it); the subscription itself was allowed with ``SUBSCRIBE``.
    """

    PUBLISH = "publish"
    SUBSCRIBE = "subscribe"
    RETAINED = "retained"


@dataclass(frozen=True, slots=True)
class ConnectInfo:
    """What the broker knows about a connecting client when it asks the authenticator."""

    client_id: str
    username: str | None
    password: bytes | None
    protocol_level: int
    listener: str
    """Name of the listener: ``"tcp"``, ``"tls"``, ``"ws"`` or ``"wss"``."""
    peer: str
    """Peer address as ``host:port``."""
    certificate_subject: str | None = None
    certificate_cn: str | None = None
    certificate_serial: int | None = None


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated identity behind a connection.

    ``id`` is stable and unique per identity (``"device:<uuid>"``,
    ``"token:<uuid>"``, ``"anonymous"``); the broker uses it for ``kick`` and for
    authorization-cache invalidation. ``mountpoint`` is the topic namespace
    prefix described in the module docstring (``""`` means the global namespace).
    """

    id: str
    kind: str
    organization_id: str | None = None
    mountpoint: str = ""
    attributes: Mapping[str, str] = field(default_factory=dict)
    expires_at: float | None = None
    """Unix time after which the broker disconnects the client (token expiry)."""


class Authenticator(Protocol):
    """Turns a CONNECT into a principal or a refusal.

    An authenticator may remember its answers so that a storm of reconnecting clients does not
    wait on its backing store; :meth:`Broker.invalidate` calls :meth:`forget` so that nothing it
    remembers outlives a change of the principal's credentials or rights.
    """

    def admit(self, info: ConnectInfo) -> Principal | Awaitable[Principal]:
        """The principal at once when the client's credentials are remembered, else an awaitable that decides.

        The awaitable returns the principal or raises :class:`mqtthub.errors.AuthenticationRefused`. A
        client answered at once gets its CONNACK in the event-loop pass that read its CONNECT, with no task,
        which is what lets a reconnecting fleet in at the speed of the network; one call, so that a
        credential is looked at (hashed) once per CONNECT.
        """
        ...

    def forget(self, principal_id: str) -> None:
        """Drop whatever is remembered about the principal's credentials."""
        ...


class Authorizer(Protocol):
    """Decides whether a principal may publish to, subscribe to, or read retained messages of a topic.

    ``topic`` is as the client sent it (before the mountpoint is applied). The broker asks again for
    every subscription of a principal after :meth:`Broker.invalidate` and removes those now denied.
    """

    async def authorize(self, principal: Principal, action: Action, topic: str) -> bool:
        """Return True to allow."""
        ...


@dataclass(slots=True)
class BrokerMessage:
    """An application message inside the broker. ``topic`` is the full internal topic (mountpoint included)."""

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    properties: Properties | None = None
    publisher_client_id: str | None = None
    publisher: Principal | None = None
    received_at: float = 0.0
    """Unix time at which the broker accepted the message."""
    on_delivered: Callable[[str], None] | None = None
    """Called with the subscriber's client id when a subscriber acknowledges the
    message (PUBACK for QoS 1, PUBCOMP for QoS 2) or, for QoS 0, when it is written."""


class MessageSink(Protocol):
    """Receives every PUBLISH the broker accepts from a client.

    ``offer`` runs on the event loop's hot path and must not block. It returns
    ``None`` when the message needs nothing durable (the broker acknowledges at
    once), or a future that resolves to an MQTT 5.0 reason code once the
    message is stored: the broker holds the PUBACK/PUBREC of a QoS 1/2 message
    until then, and does not route a message whose code is >= 0x80 (the code is
    sent to a 5.0 client in the PUBACK; a 3.1.1 client gets a plain PUBACK). A
    future that ends with an exception, or is cancelled, means "could not be
    stored, and not the message's fault": the broker then sends no
    acknowledgement and disconnects the publisher, which sends it again later.
    """

    def offer(self, message: BrokerMessage) -> asyncio.Future[int] | None:
        """Take a message; see the class docstring for the return value."""
        ...


class BrokerObserver(Protocol):
    """Told about connection life-cycle events (device online/offline, audit, metrics), new subscriptions
    and messages restored from the state store."""

    def client_connected(self, client_id: str, principal: Principal) -> None:
        """A client completed CONNECT."""
        ...

    def client_disconnected(self, client_id: str, principal: Principal, reason: str, *, graceful: bool) -> None:
        """A client's connection ended; ``graceful`` is True after a DISCONNECT packet with code 0."""
        ...

    def client_subscribed(self, client_id: str, principal: Principal, topic_filter: str) -> None:
        """A client added a subscription it did not hold (``topic_filter`` internal, mountpoint included).

        Not called for a subscription that replaced one, a shared one, or one restored from the state store.
        """
        ...

    def message_restored(self, message: BrokerMessage) -> None:
        """A message a stored session held was read back on start, before any client connects.

        Its ``on_delivered`` is gone with the previous process; the observer may set it again.
        """
        ...
