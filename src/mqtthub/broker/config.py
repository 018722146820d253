"""Configuration of the embedded broker: its listeners and its limits.

Every timing and limit the broker enforces is a field here, so tests and the hub
set them through the constructor instead of patching constants.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mqtthub.broker.persistence import PersistenceMode
from mqtthub.errors import ConfigurationError

ListenerKind = Literal["tcp", "tls", "ws", "wss"]


@dataclass(frozen=True, slots=True)
class ListenerConfig:
    """One socket the broker accepts clients on.

    ``port=0`` binds an ephemeral port; :attr:`Broker.addresses` reports the real one.
    TLS kinds (``tls``, ``wss``) need ``certfile`` and ``keyfile``; with ``cafile`` the
    listener asks for a client certificate, which ``require_client_cert`` makes mandatory.
    """

    name: str
    kind: ListenerKind = "tcp"
    host: str = "127.0.0.1"
    port: int = 1883
    certfile: Path | None = None
    keyfile: Path | None = None
    cafile: Path | None = None
    require_client_cert: bool = False

    def __post_init__(self) -> None:
        if self.kind in ("tls", "wss") and (self.certfile is None or self.keyfile is None):
            raise ConfigurationError(f"listener {self.name!r}: kind {self.kind} needs certfile and keyfile")
        if self.require_client_cert and self.cafile is None:
            raise ConfigurationError(f"listener {self.name!r}: require_client_cert needs cafile")
        if not 0 <= self.port <= 65535:
            raise ConfigurationError(f"listener {self.name!r}: port {self.port} out of range")

    @property
    def is_tls(self) -> bool:
        """Whether the listener wraps its sockets in TLS."""
        return self.kind in ("tls", "wss")

    @property
    def is_websocket(self) -> bool:
        """Whether MQTT is carried in WebSocket binary frames [MQTT-6.0.0-1]."""
        return self.kind in ("ws", "wss")


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    """Listeners and limits of one broker.

    Attributes:
        listeners: Sockets to accept clients on.
        max_connections: Concurrent client connections; the excess is closed at once.
        max_connection_rate: New connections accepted per second (token bucket, burst of the same size).
        listen_backlog: Connections the kernel queues for a listener before the broker accepts them (capped by
            ``net.core.somaxconn``); a reconnecting fleet needs more than asyncio's default of 100.
        max_packet_size: Largest packet accepted from a client; advertised to 5.0 clients [MQTT-3.2.2.3.6].
        receive_maximum: QoS 1/2 publishes a client may have unacknowledged towards the broker [MQTT-3.2.2.3.3].
        max_inflight: QoS 1/2 messages in flight towards a client (capped by the client's receive maximum).
        max_queued_messages: QoS 1/2 messages held per session beyond those in flight; overflow policy: drop oldest.
            A connected client's queue at half of it holds its publishers back until it is down to a quarter.
        publisher_hold_limit: Seconds a connected client's backlog may hold its publishers back; past them it
            drops its oldest messages instead (see :mod:`mqtthub.broker.session`).
        max_outbound_qos0: QoS 0 messages buffered for a client whose socket is not draining; overflow policy:
            drop newest.
        max_keepalive: Largest keep alive the broker accepts; 5.0 clients asking for more (or 0) are told
            this value as server keep alive [MQTT-3.2.2.3.14].
        connect_timeout: Seconds a new socket may stay silent before sending CONNECT.
        max_session_expiry: Upper bound on a session's expiry interval, in seconds; also the lifetime of an
            offline 3.1.1 persistent session.
        sys_interval: Seconds between ``$SYS`` updates; 0 disables them.
        retain_available: Whether retained messages are supported [MQTT-3.2.2.3.8].
        max_topic_aliases: Topic aliases a 5.0 client may use towards the broker [MQTT-3.2.2.3.9].
        max_outbound_topic_aliases: Topic aliases the broker uses towards a 5.0 client, capped by the client's
            Topic Alias Maximum [MQTT-3.3.2-9]; least recently used topics give theirs up. 0 never sends aliases.
        maximum_qos: Highest QoS the broker grants [MQTT-3.2.2.3.4].
        housekeeping_interval: Seconds between keep alive / expiry / will-delay checks.
        max_acl_cache_entries: Authorizer answers cached per connection; overflow policy: clear when full.
        max_stored_qos1_ids: Packet ids of QoS 1 messages the sink stored, remembered per session so that a
            re-send (DUP=1, same id) after a reconnect is acknowledged without being stored again; overflow
            policy: forget the oldest. Never fewer than ``receive_maximum``, the most QoS 1 messages a 5.0 client
            has unacknowledged [MQTT-3.3.4-9]; small, since every session that publishes keeps that many.
        persistence: With a state store: ``sync`` holds each PUBACK/PUBREC/PUBCOMP until the state it changed
            is stored; ``periodic`` writes every ``persistence_interval`` seconds and holds nothing.
        persistence_interval: Seconds between writes of the state store in ``periodic`` mode.
    """

    listeners: tuple[ListenerConfig, ...] = field(default_factory=lambda: (ListenerConfig(name="tcp"),))
    max_connections: int = 10_000
    max_connection_rate: float = 1_000.0
    listen_backlog: int = 4_096
    max_packet_size: int = 1024 * 1024
    receive_maximum: int = 100
    max_inflight: int = 100
    max_queued_messages: int = 1_000
    publisher_hold_limit: float = 10.0
    max_outbound_qos0: int = 1_000
    max_keepalive: int = 3_600
    connect_timeout: float = 10.0
    max_session_expiry: int = 7 * 24 * 3600
    sys_interval: float = 10.0
    retain_available: bool = True
    max_topic_aliases: int = 16
    max_outbound_topic_aliases: int = 64
    maximum_qos: int = 2
    housekeeping_interval: float = 0.5
    max_acl_cache_entries: int = 1_024
    max_stored_qos1_ids: int = 128
    persistence: PersistenceMode = "sync"
    persistence_interval: float = 1.0

    def __post_init__(self) -> None:
        names = [listener.name for listener in self.listeners]
        if len(set(names)) != len(names):
            raise ConfigurationError(f"listener names must be unique: {names}")
        if not 1 <= self.receive_maximum <= 65535 or not 1 <= self.max_inflight <= 65535:
            raise ConfigurationError("receive_maximum and max_inflight must be within 1..65535")
        if self.maximum_qos not in (0, 1, 2):
            raise ConfigurationError("maximum_qos must be 0, 1 or 2")
        if not 0 <= self.max_outbound_topic_aliases <= 65535:
            raise ConfigurationError("max_outbound_topic_aliases must be within 0..65535")
        if self.max_packet_size < 16:
            raise ConfigurationError("max_packet_size is too small")
