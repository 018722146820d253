"""What an administrator may look at inside a broker: its connected clients and their subscriptions.

These are read-only snapshots, taken on request (O(connections)); topic filters are internal ones (mountpoints
included), as everywhere on the broker's side of :class:`~mqtthub.broker.handle.BrokerHandle`.
"""

from __future__ import annotations

from dataclasses import dataclass

from mqtthub.broker.hooks import Principal


@dataclass(frozen=True, slots=True)
class SubscriptionInfo:
    """One subscription of a client: its internal filter, granted QoS and, for ``$share``, its group."""

    topic_filter: str
    qos: int
    share_group: str | None = None


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """A connected client as an administrator sees it.

    Attributes:
        client_id: the MQTT client identifier (unique within one namespace only).
        principal: who it authenticated as.
        protocol: the protocol it speaks, e.g. ``"MQTT 5.0"``.
        peer: its network address (``host:port``), or ``""`` when the broker does not say.
        connected_at: Unix time its connection was opened, or ``None`` when the broker does not say.
        subscriptions: its subscriptions; empty when the broker does not list them.
        queued: messages waiting in its session for room in the in-flight window.
    """

    client_id: str
    principal: Principal
    protocol: str
    peer: str = ""
    connected_at: float | None = None
    subscriptions: tuple[SubscriptionInfo, ...] = ()
    queued: int = 0
