"""Devices, their tokens, MQTT API tokens for apps, and client certificates issued by the hub's CA.

Every secret here is stored only as an HMAC digest (``*_hash``, see :mod:`mqtthub.crypto`);
``hint`` keeps a few leading characters so people can tell their tokens apart. A PKCS#12
bundle waits encrypted until its one download, then is erased.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mqtthub.db.base import Base, UTCDateTime, UUIDString, new_id, utcnow


class Device(Base):
    """A thing that connects over MQTT, inside one organization. ``id`` is its MQTT username."""

    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(UUIDString, primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(
        UUIDString, ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    # ``metadata`` is taken by SQLAlchemy's declarative base, hence the attribute name.
    device_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class DeviceToken(Base):
    """A device's MQTT password. A device may hold several at once, so tokens can be rotated."""

    __tablename__ = "device_tokens"

    id: Mapped[str] = mapped_column(UUIDString, primary_key=True, default=new_id)
    device_id: Mapped[str] = mapped_column(UUIDString, ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MqttApiToken(Base):
    """An app's MQTT credential (username = password = token), scoped to one organization.

    ``subscribe`` and ``publish`` are lists of topic filters inside the organization's
    namespace; an empty ``publish`` list makes the token subscribe-only.
    """

    __tablename__ = "mqtt_api_tokens"

    id: Mapped[str] = mapped_column(UUIDString, primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(
        UUIDString, ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(1000), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(32))
    subscribe: Mapped[list[str]] = mapped_column(JSON, default=list)
    publish: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_by: Mapped[str | None] = mapped_column(UUIDString, ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ClientCertificate(Base):
    """An X.509 client certificate the hub's CA issued to a device or a user (CN = its id).

    ``serial`` is the certificate's serial number in lowercase hexadecimal. Until its one
    download, the PKCS#12 bundle is kept encrypted in ``p12_ciphertext`` and found by
    ``download_hash``; both are cleared when it is fetched.
    """

    __tablename__ = "client_certificates"

    id: Mapped[str] = mapped_column(UUIDString, primary_key=True, default=new_id)
    serial: Mapped[str] = mapped_column(String(40), unique=True)
    organization_id: Mapped[str] = mapped_column(
        UUIDString, ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    device_id: Mapped[str | None] = mapped_column(UUIDString, ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str | None] = mapped_column(UUIDString, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    common_name: Mapped[str] = mapped_column(String(200))
    not_after: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    download_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    download_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    p12_ciphertext: Mapped[str | None] = mapped_column(Text)
