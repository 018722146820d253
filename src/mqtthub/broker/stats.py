"""Counters the broker keeps about itself (served by ``stats()`` and ``$SYS``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


@dataclass(slots=True)
class BrokerStats:
    """Running totals since the broker started. :meth:`Broker.stats` returns a copy."""

    started_at: float = 0.0
    clients_connected: int = 0
    clients_total: int = 0
    sessions: int = 0
    subscriptions: int = 0
    retained_messages: int = 0
    messages_received: int = 0
    messages_sent: int = 0
    bytes_received: int = 0
    bytes_sent: int = 0
    publish_denied: int = 0
    subscribe_denied: int = 0
    auth_refused: int = 0
    protocol_errors: int = 0
    connections_rejected: int = 0
    keepalive_timeouts: int = 0
    connect_timeouts: int = 0
    kicked: int = 0
    sessions_discarded: int = 0
    """Sessions ended because their identity stopped being valid (see ``Broker.discard_sessions``)."""
    expired_principals: int = 0
    qos0_dropped: int = 0
    queue_dropped: int = 0
    acks_held: int = 0
    """Acknowledgements held back because the message left a connected client's queue half full."""
    holds_given_up: int = 0
    """Holds a client did not end within ``publisher_hold_limit`` (its oldest messages were then dropped)."""
    expired_dropped: int = 0
    oversize_dropped: int = 0
    sink_rejected: int = 0
    sink_unavailable: int = 0
    """QoS 1/2 PUBLISHes the sink could not store (store down, hub stopping): not acknowledged, client disconnected."""
    qos1_duplicates: int = 0
    """QoS 1 re-sends (DUP=1, same id, same session) of messages the sink already had: acknowledged, not stored."""
    topic_too_long: int = 0
    """PUBLISHes and wills refused because their topic no longer fits once the namespace prefix is added."""
    payload_format_invalid: int = 0
    """PUBLISHes and wills refused because a payload marked UTF-8 is not [MQTT-3.3.2-4]."""
    subscriptions_revoked: int = 0
    """Subscriptions removed because the authorizer denied them when they were checked again."""
    delivery_failed: int = 0
    """Deliveries to one subscriber that failed (counted and skipped; the fan-out goes on)."""
    connects_refused: dict[int, int] = field(default_factory=dict)
    """Refusing CONNACKs sent, by MQTT 5.0 reason code."""
    queued_messages: int = 0
    """Messages queued in every session (filled in by :meth:`Broker.stats`)."""
    session_queue_max: int = 0
    """Messages queued in the fullest session (filled in by :meth:`Broker.stats`)."""
    state_batches_written: int = 0
    """Batches of state changes the state store took (filled in by :meth:`Broker.stats`)."""
    state_write_failures: int = 0
    """Writes of the state store that failed (and were retried)."""
    state_write_error: str | None = None
    """While writes of the state store fail: the last error; ``None`` otherwise."""

    @property
    def messages_dropped(self) -> int:
        """Messages not delivered to some subscriber, for any reason (``$SYS/broker/messages/dropped``)."""
        return (
            self.qos0_dropped + self.queue_dropped + self.expired_dropped + self.oversize_dropped + self.delivery_failed
        )

    def snapshot(self) -> BrokerStats:
        """An independent copy of the counters."""
        return dataclasses.replace(self, connects_refused=dict(self.connects_refused))
