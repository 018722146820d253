"""The interface the hub uses to talk to a broker, so an external broker can stand in for the embedded one."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from mqtthub.broker.hooks import BrokerMessage, Principal
from mqtthub.broker.inspection import ClientInfo
from mqtthub.broker.stats import BrokerStats
from mqtthub.mqtt.packets import Properties

if TYPE_CHECKING:
    from mqtthub.broker.server import BrokerState  # the server module imports this one


class LocalSubscription(Protocol):
    """A handle on an in-process subscription returned by :meth:`BrokerHandle.subscribe`."""

    topic_filter: str


class BrokerHandle(Protocol):
    """What the rest of mqtthub needs from a broker. Topics are full internal topics (mountpoints included)."""

    @property
    def state(self) -> BrokerState:
        """Where the broker is in its life cycle (``/health`` reports it)."""
        ...

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
        """Publish a message as the hub (not offered to the message sink).

        ``on_delivered`` is called with the client id of each subscriber that received it.
        """
        ...

    def subscribe(self, topic_filter: str, callback: Callable[[BrokerMessage], None]) -> LocalSubscription:
        """Call ``callback`` for every message matching ``topic_filter`` (``$share/{group}/`` allowed)."""
        ...

    def unsubscribe(self, subscription: LocalSubscription) -> None:
        """Stop a subscription made with :meth:`subscribe`; unknown handles are ignored."""
        ...

    def kick(self, *, client_id: str | None = None, principal_id: str | None = None, reason_code: int = 0x98) -> int:
        """Disconnect matching clients (5.0 clients get DISCONNECT ``reason_code``); return how many."""
        ...

    def discard_sessions(self, principal_id: str, reason_code: int = 0x87) -> int:
        """End every session of a principal (its clients disconnected, no will sent); return how many."""
        ...

    def clients(self) -> list[tuple[str, Principal]]:
        """The client id and principal of every connected client."""
        ...

    def connections(self) -> list[ClientInfo]:
        """Every connected client with what the broker knows of it (address, protocol, subscriptions)."""
        ...

    def retained(self, topic_filter: str) -> list[BrokerMessage]:
        """The retained messages matching an internal ``topic_filter``.

        Raises:
            UnavailableError: the broker keeps its retained messages where the hub cannot list them.
        """
        ...

    def offline_sessions(self) -> list[Principal]:
        """The owner of each session no client is connected to (persistent sessions, restored ones included)."""
        ...

    def invalidate(self, principal_id: str) -> None:
        """Drop cached authentication and authorization answers of a principal."""
        ...

    def stats(self) -> BrokerStats:
        """A snapshot of the broker's counters."""
        ...

    def connected_count(self) -> int:
        """How many clients are connected now; cheap enough to ask every second (unlike :meth:`stats`)."""
        ...
