"""ORM models of every domain; importing this package registers all tables on ``Base.metadata``."""

from mqtthub.models.account import Organization, User, UserRole
from mqtthub.models.messaging import HistoryMessage, MessageSubscription

__all__ = ["HistoryMessage", "MessageSubscription", "Organization", "User", "UserRole"]
