"""Organizations and the people who log in to manage them."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, Enum, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from mqtthub.db.base import Base, UTCDateTime, UUIDString, new_id, utcnow


class UserRole(enum.StrEnum):
    """What a user may do: a platform admin manages everything, an org admin its organization."""

    PLATFORM_ADMIN = "platform_admin"
    ORG_ADMIN = "org_admin"
    ORG_MEMBER = "org_member"


class Organization(Base):
    """A tenant: every device, token and message belongs to exactly one organization.

    ``short_id`` (6-10 lowercase letters and digits) is the visible part of the
    organization's MQTT API tokens and names its topic namespace inside the broker.
    """

    __tablename__ = "organizations"

    id: Mapped[str] = mapped_column(UUIDString, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    short_id: Mapped[str] = mapped_column(String(10), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class User(Base):
    """A person with a login. Org admins and members belong to one organization; a platform admin may too."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(UUIDString, primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[UserRole] = mapped_column(
        Enum(UserRole, native_enum=False, length=20, values_callable=lambda roles: [role.value for role in roles])
    )
    organization_id: Mapped[str | None] = mapped_column(
        UUIDString, ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
