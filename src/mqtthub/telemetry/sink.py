"""The broker-facing side of telemetry: the message sink and the connection observer."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from mqtthub.broker.episodes import EpisodeLog
from mqtthub.broker.hooks import BrokerMessage, Principal
from mqtthub.errors import StateError, UnavailableError
from mqtthub.telemetry.directory import DeviceInfo, Directory
from mqtthub.telemetry.ingest import Ingest, IngestKind, Source, from_message
from mqtthub.telemetry.routing import parse_device_topic
from mqtthub.telemetry.writer import IngestWriter, QueueFullPolicy
from mqtthub.tenancy import short_id_of

if TYPE_CHECKING:
    from collections.abc import Callable

logger = logging.getLogger(__name__)
episodes = EpisodeLog()

DEVICE_PRINCIPAL_PREFIX = "device:"


def device_of(principal: Principal) -> str | None:
    """The device behind a principal (a device token or a device's certificate), or None for apps and users."""
    device_id = principal.attributes.get("device_id")
    if device_id:
        return device_id
    if principal.id.startswith(DEVICE_PRINCIPAL_PREFIX):
        return principal.id[len(DEVICE_PRINCIPAL_PREFIX) :]
    return None


def _unavailable() -> asyncio.Future[int]:
    # An exception, not an error code: the broker then closes the connection instead of acknowledging.
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    future.set_exception(UnavailableError("telemetry ingestion is stopped"))
    return future


class TelemetrySink:
    """Takes device topics out of the broker's stream into the ingest writer.

    Returns None (the broker routes and acknowledges at once) for every topic that is not
    a device topic inside an organization namespace (see :mod:`mqtthub.telemetry.routing`).
    For device topics it returns the writer's future: the broker acknowledges a QoS 1/2
    message when that batch has committed, with 0x99 (payload format invalid) when it was
    rejected. When the message cannot be stored (telemetry stopped, database down past the
    writer's hold timeout) the future holds an :class:`~mqtthub.errors.UnavailableError` and the
    broker disconnects the publisher without acknowledging. QoS 0 messages use the
    ``DROP_NEWEST`` queue-full policy, others ``PAUSE_PUBLISHER``.
    """

    def __init__(self, writer: IngestWriter[Ingest]) -> None:
        self._writer = writer
        self.offered = 0

    def offer(self, message: BrokerMessage) -> asyncio.Future[int] | None:
        """See :class:`mqtthub.broker.hooks.MessageSink`."""
        topic = parse_device_topic(message.topic)
        if topic is None:
            return None
        self.offered += 1
        item = from_message(
            topic.route,
            topic.device_id,
            message.payload,
            source=Source.MQTT,
            received_ms=int(message.received_at * 1000),
            topic=message.topic[len(topic.short_id) + 5 :],
            sensor=topic.sensor,
            short_id=topic.short_id,
        )
        policy = QueueFullPolicy.PAUSE_PUBLISHER if message.qos else QueueFullPolicy.DROP_NEWEST
        try:
            return self._writer.submit(item, policy=policy)
        except StateError:
            episodes(
                logger,
                logging.WARNING,
                "stopped",
                "device message on %.200s arrived while telemetry is stopped",
                message.topic,
            )
            return _unavailable() if message.qos else None


class DeviceObserver:
    """Turns broker connects and disconnects of device principals into device status.

    A device may briefly have two connections (a reconnect taking over its session), so it
    is marked offline only when its last connection closes. New subscriptions and restored
    messages go to ``on_subscribed`` and ``on_restored`` (pending commands). A device let in is
    made known to ``directory`` from its principal, so its status row needs no look-up.
    """

    def __init__(
        self,
        writer: IngestWriter[Ingest],
        *,
        clock: Callable[[], float],
        directory: Directory | None = None,
        on_subscribed: Callable[[Principal, str], None] | None = None,
        on_restored: Callable[[BrokerMessage], None] | None = None,
    ) -> None:
        self._writer = writer
        self._clock = clock
        self._directory = directory
        self._on_subscribed = on_subscribed
        self._on_restored = on_restored
        self._connections: dict[str, int] = {}

    def online(self, device_id: str) -> bool:
        """Whether the device has a connection open to this hub's broker."""
        return self._connections.get(device_id, 0) > 0

    def _record(self, kind: IngestKind, device_id: str) -> None:
        item = Ingest(kind, device_id, Source.BROKER, int(self._clock() * 1000))
        try:
            self._writer.submit(item, awaited=False)
        except StateError:
            logger.info("device %s %s while telemetry is stopped", device_id, kind.value)

    def client_connected(self, client_id: str, principal: Principal) -> None:
        """See :class:`mqtthub.broker.hooks.BrokerObserver`."""
        device_id = device_of(principal)
        if device_id is None:
            return
        self._connections[device_id] = self._connections.get(device_id, 0) + 1
        if self._directory is not None and principal.organization_id is not None:
            short_id = short_id_of(principal.mountpoint)
            if short_id is not None:
                self._directory.know_device(DeviceInfo(device_id, principal.organization_id, short_id, enabled=True))
        self._record(IngestKind.CONNECTED, device_id)

    def client_disconnected(self, client_id: str, principal: Principal, reason: str, *, graceful: bool) -> None:
        """See :class:`mqtthub.broker.hooks.BrokerObserver`."""
        device_id = device_of(principal)
        if device_id is None:
            return
        remaining = self._connections.get(device_id, 0) - 1
        if remaining > 0:
            self._connections[device_id] = remaining
            return
        self._connections.pop(device_id, None)
        self._record(IngestKind.DISCONNECTED, device_id)

    def client_subscribed(self, client_id: str, principal: Principal, topic_filter: str) -> None:
        """See :class:`mqtthub.broker.hooks.BrokerObserver`."""
        if self._on_subscribed is not None:
            self._on_subscribed(principal, topic_filter)

    def message_restored(self, message: BrokerMessage) -> None:
        """See :class:`mqtthub.broker.hooks.BrokerObserver`."""
        if self._on_restored is not None:
            self._on_restored(message)
