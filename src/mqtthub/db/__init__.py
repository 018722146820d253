"""Database access: async engine and session factories, declarative base, migrations."""

from mqtthub.db.base import Base
from mqtthub.db.engine import Database

__all__ = ["Base", "Database"]
