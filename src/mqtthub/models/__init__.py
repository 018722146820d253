"""ORM models of every domain; importing this package registers all tables on ``Base.metadata``."""

from mqtthub.models.account import Organization, User, UserRole

__all__ = ["Organization", "User", "UserRole"]
