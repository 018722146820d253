"""The messaging API's state: each organization's message history and the topic filters it records."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mqtthub.db.base import Base, UTCDateTime, UUIDString, new_id, utcnow

MAX_RECORDED_TOPIC_LENGTH = 1024
"""Longest topic (in characters) kept in the history; longer ones are counted and skipped."""


class MessageSubscription(Base):
    """A topic filter an organization asked the hub to record (``POST /subscribe``).

    ``topic_filter`` is as the organization sees it, without its namespace prefix.
    """

    __tablename__ = "message_subscriptions"
    __table_args__ = (UniqueConstraint("organization_id", "topic_filter"),)

    id: Mapped[str] = mapped_column(UUIDString, primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(
        UUIDString, ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    topic_filter: Mapped[str] = mapped_column(String(MAX_RECORDED_TOPIC_LENGTH))
    qos: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class HistoryMessage(Base):
    """One recorded message. ``topic`` is without the organization's namespace prefix."""

    __tablename__ = "message_history"
    __table_args__ = (
        Index("ix_message_history_organization_id_received_at", "organization_id", "received_at"),
        Index("ix_message_history_organization_id_topic", "organization_id", "topic"),
    )

    id: Mapped[str] = mapped_column(UUIDString, primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(UUIDString, ForeignKey("organizations.id", ondelete="CASCADE"))
    topic: Mapped[str] = mapped_column(String(MAX_RECORDED_TOPIC_LENGTH))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    qos: Mapped[int] = mapped_column(Integer)
    retain: Mapped[bool] = mapped_column(Boolean)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
