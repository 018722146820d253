"""The Python SDK of mqtthub: talk to a running hub over HTTP and WebSocket.

::

    from mqtthub.client import HubClient

    with HubClient("http://localhost:8000", api_key="mqh_...") as hub:
        hub.publish("factory/line1/press1/temperature", "45.2", qos=1)
        page = hub.get_messages(topic="factory/+/+/temperature", limit=10)

- :class:`HubClient` (sync) and :class:`AsyncHubClient` (asyncio) cover the HTTP API and
  return typed models;
- :class:`StreamClient` follows the live stream (``/ws``) with a handler or ``async for``,
  reconnecting with backoff;
- :class:`BrokerListener` listens to topics on any MQTT broker (password or client certificate,
  :class:`TLSOptions`), blocking or in the background;
- every failure of the hub clients is a :class:`HubError` (tree in :mod:`mqtthub.client._exceptions`).

``MQTTAPIClient``, ``AsyncMQTTAPIClient`` and ``MQTTWebSocketClient`` are the same classes under
the names used by the REST bridge's documentation. Importing this package imports no server code.
"""

from mqtthub.client._async import AsyncHubClient
from mqtthub.client._exceptions import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ClientStateError,
    ConflictError,
    HubConnectionError,
    HubError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    ServiceUnavailableError,
    ValidationError,
)
from mqtthub.client._identity_models import (
    Certificate,
    CertificateConfig,
    CertificateIssued,
    CertificateList,
    Device,
    DeviceList,
    DeviceToken,
    DeviceTokenCreated,
    DeviceTokenList,
    MqttToken,
    MqttTokenCreated,
    MqttTokenList,
    MqttTokenRevoked,
    TokenPermissions,
    User,
    UserList,
)
from mqtthub.client._models import (
    Health,
    LoginUser,
    Message,
    MessagePage,
    Organization,
    OrganizationList,
    PublishResult,
    ServiceInfo,
    Session,
    Stats,
    SubscriptionResult,
    TopicInfo,
    TopicList,
)
from mqtthub.client._product_models import ConnectionTest, Product, ProductList
from mqtthub.client._stream import StreamClient
from mqtthub.client._sync import HubClient
from mqtthub.client._telemetry_models import Broadcast, Command, CommandPage, DeviceStatus, Pagination, ReadingPage
from mqtthub.client.listener import BrokerListener, ListenerMessage
from mqtthub.client.tls import TLSOptions

MQTTAPIClient = HubClient
AsyncMQTTAPIClient = AsyncHubClient
MQTTWebSocketClient = StreamClient

__all__ = [
    "APIError",
    "AsyncHubClient",
    "AsyncMQTTAPIClient",
    "AuthenticationError",
    "BadRequestError",
    "Broadcast",
    "BrokerListener",
    "Certificate",
    "CertificateConfig",
    "CertificateIssued",
    "CertificateList",
    "ClientStateError",
    "Command",
    "CommandPage",
    "ConflictError",
    "ConnectionTest",
    "Device",
    "DeviceList",
    "DeviceStatus",
    "DeviceToken",
    "DeviceTokenCreated",
    "DeviceTokenList",
    "Health",
    "HubClient",
    "HubConnectionError",
    "HubError",
    "ListenerMessage",
    "LoginUser",
    "MQTTAPIClient",
    "MQTTWebSocketClient",
    "Message",
    "MessagePage",
    "MqttToken",
    "MqttTokenCreated",
    "MqttTokenList",
    "MqttTokenRevoked",
    "NotFoundError",
    "Organization",
    "OrganizationList",
    "Pagination",
    "PermissionDeniedError",
    "Product",
    "ProductList",
    "PublishResult",
    "RateLimitedError",
    "ReadingPage",
    "ServerError",
    "ServiceInfo",
    "ServiceUnavailableError",
    "Session",
    "Stats",
    "StreamClient",
    "SubscriptionResult",
    "TLSOptions",
    "TokenPermissions",
    "TopicInfo",
    "TopicList",
    "User",
    "UserList",
    "ValidationError",
]
