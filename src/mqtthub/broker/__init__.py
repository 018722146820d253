"""The embedded MQTT broker (3.1.1 and 5.0 over TCP, TLS, WebSocket and secure WebSocket).

It knows nothing of HTTP or SQL: the hub plugs in through :mod:`mqtthub.broker.hooks`
and talks to it through :class:`mqtthub.broker.handle.BrokerHandle`.
"""

from mqtthub.broker.config import BrokerConfig, ListenerConfig
from mqtthub.broker.handle import BrokerHandle
from mqtthub.broker.server import Broker, BrokerState
from mqtthub.broker.stats import BrokerStats

__all__ = ["Broker", "BrokerConfig", "BrokerHandle", "BrokerState", "BrokerStats", "ListenerConfig"]
