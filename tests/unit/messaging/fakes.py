"""The fakes of the messaging unit tests: in-memory stand-ins for the broker's ``BrokerHandle`` seam and for an
external broker's shared queues of recorded filters (``SharedRecording``).

They route with the real MQTT matching rules: the broker fake hands every matching in-process subscriber the
same message object, as the real broker does; the shared-queue fake queues a message once however many bindings
match, as RabbitMQ does. The acceptance tests use the real brokers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from mqtthub.broker import BrokerState
from mqtthub.broker.handle import LocalSubscription
from mqtthub.broker.hooks import BrokerMessage, MessageSink, Principal
from mqtthub.broker.inspection import ClientInfo
from mqtthub.broker.stats import BrokerStats
from mqtthub.errors import StateError
from mqtthub.mqtt.packets import Properties
from mqtthub.mqtt.topics import topic_matches


@dataclass(eq=False)
class FakeSubscription:
    topic_filter: str
    callback: Callable[[BrokerMessage], None]


class FakeBroker:
    """Routes published messages to in-process subscribers; ``running = False`` makes it unavailable."""

    def __init__(self) -> None:
        self.running = True
        self.subscriptions: list[FakeSubscription] = []
        self.published: list[BrokerMessage] = []

    @property
    def state(self) -> BrokerState:
        return BrokerState.RUNNING if self.running else BrokerState.CLOSED

    def _require_running(self) -> None:
        if not self.running:
            raise StateError("broker is not running: it is stopped")

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
        self._require_running()
        message = BrokerMessage(
            topic, payload, qos, retain, properties, received_at=time.time(), on_delivered=on_delivered
        )
        self.route(message)

    def route(self, message: BrokerMessage) -> None:
        self.published.append(message)
        for subscription in list(self.subscriptions):
            if topic_matches(subscription.topic_filter, message.topic):
                subscription.callback(message)

    def subscribe(self, topic_filter: str, callback: Callable[[BrokerMessage], None]) -> FakeSubscription:
        self._require_running()
        subscription = FakeSubscription(topic_filter, callback)
        self.subscriptions.append(subscription)
        return subscription

    def unsubscribe(self, subscription: LocalSubscription) -> None:
        self._require_running()
        if isinstance(subscription, FakeSubscription) and subscription in self.subscriptions:
            self.subscriptions.remove(subscription)

    def kick(self, *, client_id: str | None = None, principal_id: str | None = None, reason_code: int = 0x98) -> int:
        return 0

    def discard_sessions(self, principal_id: str, reason_code: int = 0x87) -> int:
        return 0

    def clients(self) -> list[tuple[str, Principal]]:
        return []

    def connections(self) -> list[ClientInfo]:
        return []

    def retained(self, topic_filter: str) -> list[BrokerMessage]:
        return []

    def offline_sessions(self) -> list[Principal]:
        return []

    def invalidate(self, principal_id: str) -> None:
        return None

    def stats(self) -> BrokerStats:
        self._require_running()
        return BrokerStats(subscriptions=len(self.subscriptions))

    def connected_count(self) -> int:
        return 0


class FakeSharedQueues:
    """The recorded-filters queues of a cluster, shared by every service (hub) given the same instance."""

    def __init__(self) -> None:
        self.bindings: set[str] = set()
        self.sinks: list[MessageSink] = []

    def record_into(self, sink: MessageSink) -> None:
        self.sinks.append(sink)

    def bind_recorded(self, topic_filter: str) -> None:
        self.bindings.add(topic_filter)

    def unbind_recorded(self, topic_filter: str) -> None:
        self.bindings.discard(topic_filter)

    def deliver(self, topic: str, payload: bytes, *, hub: int = 0) -> asyncio.Future[int] | None:
        """Queue a message if a binding matches (once), and hand it to one hub's sink; None if none matches."""
        if not any(topic_matches(binding, topic) for binding in self.bindings):
            return None
        return self.sinks[hub].offer(BrokerMessage(topic, payload, 1, received_at=time.time()))
