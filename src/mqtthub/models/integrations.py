"""Products, their outbound MQTT configuration, event subscriptions, e-mail templates and the action failure log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mqtthub.db.base import Base, UTCDateTime, UUIDString, new_id, utcnow


class Product(Base):
    """Something an organization builds or sells, with (optionally) a connection to an external broker."""

    __tablename__ = "products"

    id: Mapped[str] = mapped_column(UUIDString, primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(
        UUIDString, ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class MqttConfig(Base):
    """A product's connection to an external broker.

    ``broker`` holds the documented broker object plus transport/TLS fields; its secrets
    (``password``, ``client_key``, ``pkcs12``, ``pkcs12_password``) are stored encrypted.
    ``messages_received``/``last_message_at`` are the connector's lifetime totals.
    """

    __tablename__ = "mqtt_configs"

    id: Mapped[str] = mapped_column(UUIDString, primary_key=True, default=new_id)
    product_id: Mapped[str] = mapped_column(UUIDString, ForeignKey("products.id", ondelete="CASCADE"), unique=True)
    broker: Mapped[dict[str, Any]] = mapped_column(JSON)
    topics: Mapped[dict[str, Any]] = mapped_column(JSON)
    messages_received: Mapped[int] = mapped_column(Integer, default=0)
    last_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EventSubscription(Base):
    """Messages on ``topic`` whose event name equals ``name`` trigger ``actions`` in order."""

    __tablename__ = "event_subscriptions"

    id: Mapped[str] = mapped_column(UUIDString, primary_key=True, default=new_id)
    product_id: Mapped[str] = mapped_column(UUIDString, ForeignKey("products.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    topic: Mapped[str] = mapped_column(String(1000))
    variables: Mapped[dict[str, Any]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    description: Mapped[str | None] = mapped_column(Text)
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    messages_received: Mapped[int] = mapped_column(Integer, default=0)
    last_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    actions_executed: Mapped[int] = mapped_column(Integer, default=0)
    actions_failed: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EmailTemplate(Base):
    """A named e-mail (subject, body, recipients) that e-mail actions of a product's subscriptions send."""

    __tablename__ = "email_templates"
    __table_args__ = (UniqueConstraint("product_id", "name"),)

    id: Mapped[str] = mapped_column(UUIDString, primary_key=True, default=new_id)
    product_id: Mapped[str] = mapped_column(UUIDString, ForeignKey("products.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    recipients: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ActionFailure(Base):
    """One action that failed, with its error: the queryable failure log of a product."""

    __tablename__ = "action_failures"

    id: Mapped[str] = mapped_column(UUIDString, primary_key=True, default=new_id)
    product_id: Mapped[str] = mapped_column(UUIDString, ForeignKey("products.id", ondelete="CASCADE"), index=True)
    subscription_id: Mapped[str] = mapped_column(
        UUIDString, ForeignKey("event_subscriptions.id", ondelete="CASCADE"), index=True
    )
    action_index: Mapped[int] = mapped_column(Integer)
    action_type: Mapped[str] = mapped_column(String(50))
    error: Mapped[str] = mapped_column(Text)
    topic: Mapped[str] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
