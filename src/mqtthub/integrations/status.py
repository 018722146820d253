"""The connection status of one connector, as ``GET …/mqtt-config/status`` reports it."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from mqtthub.db.base import utcnow
from mqtthub.integrations.schemas import BrokerInfo, ConnectionStatusJson, EventKind


@dataclass(slots=True)
class ConnectionEvent:
    """One connect, disconnect or connection error, kept in a short history."""

    kind: EventKind
    at: datetime
    detail: str | None


@dataclass
class ConnectionStatus:
    """Live state of a connector; survives the connector's reconnects and restarts within one hub process.

    ``messages_received`` and ``last_message_at`` start from the stored totals, so they keep
    counting across hub restarts.
    """

    product_id: str
    client_id: str
    connected: bool = False
    last_connected_at: datetime | None = None
    last_disconnected_at: datetime | None = None
    connection_error: str | None = None
    messages_received: int = 0
    last_message_at: datetime | None = None
    subscribed_topics_count: int = 0
    protocol: str | None = None
    max_qos: int | None = None
    hub: str | None = None
    """The hub running the connector (``MQTTHUB_INTEGRATION_INSTANCE_ID``); None when none does."""
    updated_at: datetime = field(default_factory=utcnow)
    history: deque[ConnectionEvent] = field(default_factory=lambda: deque(maxlen=20))

    def record_connected(self, protocol: str, max_qos: int | None) -> None:
        """A CONNACK accepted the connection."""
        now = utcnow()
        self.connected = True
        self.last_connected_at = now
        self.connection_error = None
        self.protocol = protocol
        self.max_qos = max_qos
        self.subscribed_topics_count = 0
        self._event("connected", now, f"MQTT {protocol}")

    def record_disconnected(self, reason: str | None) -> None:
        """An open connection ended; ``reason`` is None for a disconnect the hub asked for."""
        now = utcnow()
        self.connected = False
        self.last_disconnected_at = now
        self.subscribed_topics_count = 0
        self.max_qos = None
        self.protocol = None
        if reason is not None:
            self.connection_error = reason
        self._event("disconnected", now, reason)

    def record_error(self, error: str) -> None:
        """A connection attempt failed."""
        now = utcnow()
        self.connected = False
        self.connection_error = error
        self._event("error", now, error)

    def record_subscription_refused(self, error: str) -> None:
        """The broker refused a subscription; the connection itself stays up."""
        self.connection_error = error
        self._event("error", utcnow(), error)

    def record_message(self) -> None:
        """A message arrived from the broker."""
        self.messages_received += 1
        self.last_message_at = self.updated_at = utcnow()

    def record_granted_qos(self, granted: int) -> None:
        """A SUBACK granted ``granted``; for MQTT 3.1.1 this is how the broker's maximum QoS is learned."""
        self.subscribed_topics_count += 1
        if self.protocol == "3.1.1":
            self.max_qos = max(self.max_qos or 0, granted)
        self.updated_at = utcnow()

    def record_unsubscribed(self) -> None:
        """A topic filter is no longer subscribed."""
        self.subscribed_topics_count = max(0, self.subscribed_topics_count - 1)
        self.updated_at = utcnow()

    def _event(self, kind: EventKind, at: datetime, detail: str | None) -> None:
        self.updated_at = at
        self.history.append(ConnectionEvent(kind, at, detail))

    def as_dict(self) -> ConnectionStatusJson:
        """The documented status object, plus ``recent_events`` (latest last)."""
        broker_info: BrokerInfo | None = {"version": self.protocol, "max_qos": self.max_qos} if self.connected else None
        return {
            "product_id": self.product_id,
            "connected": self.connected,
            "last_connected_at": _iso(self.last_connected_at),
            "last_disconnected_at": _iso(self.last_disconnected_at),
            "connection_error": self.connection_error,
            "messages_received": self.messages_received,
            "last_message_at": _iso(self.last_message_at),
            "subscribed_topics_count": self.subscribed_topics_count,
            "client_id": self.client_id,
            "hub": self.hub,
            "broker_info": broker_info,
            "updated_at": _iso(self.updated_at),
            "recent_events": [
                {"event": event.kind, "at": _iso(event.at), "detail": event.detail} for event in self.history
            ],
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
