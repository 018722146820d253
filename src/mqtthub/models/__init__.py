"""ORM models of every domain; importing this package registers all tables on ``Base.metadata``."""

from mqtthub.models.account import Organization, User, UserRole
from mqtthub.models.integrations import (
    ActionFailure,
    EmailTemplate,
    EventSubscription,
    MqttConfig,
    Product,
    StoredEvent,
)
from mqtthub.models.messaging import HistoryMessage, MessageSubscription

__all__ = [
    "ActionFailure",
    "EmailTemplate",
    "EventSubscription",
    "HistoryMessage",
    "MessageSubscription",
    "MqttConfig",
    "Organization",
    "Product",
    "StoredEvent",
    "User",
    "UserRole",
]
