"""The SDK's public surface is pinned, and importing it loads no server code."""

from __future__ import annotations

import json
import subprocess
import sys

import mqtthub.client

PUBLIC_NAMES = [
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


def test_public_names_are_pinned() -> None:
    assert sorted(mqtthub.client.__all__) == PUBLIC_NAMES
    for name in PUBLIC_NAMES:
        assert getattr(mqtthub.client, name).__module__.startswith("mqtthub.client"), name


def test_documented_names_are_the_same_classes() -> None:
    assert mqtthub.client.MQTTAPIClient is mqtthub.client.HubClient
    assert mqtthub.client.AsyncMQTTAPIClient is mqtthub.client.AsyncHubClient
    assert mqtthub.client.MQTTWebSocketClient is mqtthub.client.StreamClient


def test_importing_the_sdk_imports_no_server_code() -> None:
    script = "import sys, json, mqtthub.client; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    modules = json.loads(result.stdout)
    assert "mqtthub.client" in modules
    server = ("fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "asyncpg", "aiosqlite")
    ours = (
        "mqtthub.broker",
        "mqtthub.messaging",
        "mqtthub.hub",
        "mqtthub.db",
        "mqtthub.api",
        "mqtthub.web",
        "mqtthub.auth",
        "mqtthub.models",
        "mqtthub.mqtt",
    )
    loaded = [m for m in modules if m.split(".")[0] in server or m.startswith(ours)]
    assert loaded == []
