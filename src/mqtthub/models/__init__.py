"""ORM models of every domain; importing this package registers all tables on ``Base.metadata``."""

from mqtthub.models.account import Organization, User, UserRole
from mqtthub.models.identity import ClientCertificate, Device, DeviceToken, MqttApiToken
from mqtthub.models.integrations import (
    ActionFailure,
    EmailTemplate,
    EventSubscription,
    MqttConfig,
    Product,
)
from mqtthub.models.messaging import HistoryMessage, MessageSubscription
from mqtthub.models.telemetry import (
    CommandStatus,
    DeviceCommand,
    DeviceStatus,
    RejectedMessage,
    TelemetryAlert,
    TelemetryDefinition,
    TelemetryValue,
)

__all__ = [
    "ActionFailure",
    "ClientCertificate",
    "CommandStatus",
    "Device",
    "DeviceCommand",
    "DeviceStatus",
    "DeviceToken",
    "EmailTemplate",
    "EventSubscription",
    "HistoryMessage",
    "MessageSubscription",
    "MqttApiToken",
    "MqttConfig",
    "Organization",
    "Product",
    "RejectedMessage",
    "TelemetryAlert",
    "TelemetryDefinition",
    "TelemetryValue",
    "User",
    "UserRole",
]
