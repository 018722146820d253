"""Telemetry: what devices measure, what they sent, their status, alerts, rejected messages and commands.

Readings keep their time as integer milliseconds since the Unix epoch (``ts_ms``): it
indexes compactly, and time buckets for aggregation are plain integer arithmetic
(``ts_ms - ts_ms % bucket``) that SQLite and PostgreSQL evaluate alike.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mqtthub.db.base import Base, UTCDateTime, UUIDString, new_id, utcnow

BigId = BigInteger().with_variant(Integer(), "sqlite")
"""A 64-bit auto-incrementing key (SQLite only auto-increments ``INTEGER PRIMARY KEY``)."""


class CommandStatus(enum.StrEnum):
    """Where a command is: published, acknowledged by the device, then reported done or failed."""

    PENDING = "pending"
    DELIVERED = "delivered"
    COMPLETED = "completed"
    FAILED = "failed"


class TelemetryDefinition(Base):
    """One thing a device measures (document 001's ``telemetryDataId``): key, unit, default thresholds."""

    __tablename__ = "telemetry_definitions"
    __table_args__ = (UniqueConstraint("device_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    organization_id: Mapped[str] = mapped_column(
        UUIDString, ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    device_id: Mapped[str] = mapped_column(UUIDString, ForeignKey("devices.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200), default="")
    unit: Mapped[str] = mapped_column(String(32), default="")
    min_threshold: Mapped[float | None] = mapped_column(Float)
    max_threshold: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TelemetryValue(Base):
    """One stored reading: a datastream value (``definition_id`` set) or a sensor telemetry message."""

    __tablename__ = "telemetry_values"
    __table_args__ = (
        Index("ix_telemetry_values_device_id_ts_ms", "device_id", "ts_ms"),
        Index("ix_telemetry_values_device_id_sensor_ts_ms", "device_id", "sensor", "ts_ms"),
        Index("ix_telemetry_values_ts_ms", "ts_ms"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(UUIDString, ForeignKey("devices.id", ondelete="CASCADE"))
    definition_id: Mapped[int | None] = mapped_column(Integer)
    sensor: Mapped[str] = mapped_column(String(100))
    value: Mapped[float | None] = mapped_column(Float)
    raw: Mapped[str] = mapped_column(Text)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(8))
    ts_ms: Mapped[int] = mapped_column(BigInteger)
    received_ms: Mapped[int] = mapped_column(BigInteger)


class DeviceStatus(Base):
    """A device's current status, from broker connects/disconnects, will messages and status messages."""

    __tablename__ = "device_status"

    device_id: Mapped[str] = mapped_column(UUIDString, ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True)
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(32))
    battery: Mapped[float | None] = mapped_column(Float)
    signal: Mapped[float | None] = mapped_column(Float)
    status_metadata: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON(none_as_null=True))
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    connected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disconnected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TelemetryAlert(Base):
    """A reading outside its thresholds, or flagged urgent, with the value that triggered it."""

    __tablename__ = "telemetry_alerts"
    __table_args__ = (Index("ix_telemetry_alerts_organization_id_created_at", "organization_id", "created_at"),)

    id: Mapped[str] = mapped_column(UUIDString, primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(UUIDString, ForeignKey("organizations.id", ondelete="CASCADE"))
    device_id: Mapped[str] = mapped_column(UUIDString, ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    definition_id: Mapped[int | None] = mapped_column(Integer)
    sensor: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[float | None] = mapped_column(Float)
    raw: Mapped[str] = mapped_column(Text)
    min_threshold: Mapped[float | None] = mapped_column(Float)
    max_threshold: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RejectedMessage(Base):
    """A device message that was not stored, with why (``field`` names what was wrong)."""

    __tablename__ = "rejected_messages"
    __table_args__ = (Index("ix_rejected_messages_organization_id_received_at", "organization_id", "received_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    organization_id: Mapped[str | None] = mapped_column(UUIDString)
    device_id: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(8))
    topic: Mapped[str] = mapped_column(String(1024))
    field: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(String(500))
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DeviceCommand(Base):
    """A command sent to a device over ``devices/{id}/commands`` and what became of it."""

    __tablename__ = "device_commands"
    __table_args__ = (Index("ix_device_commands_device_id_created_at", "device_id", "created_at"),)

    id: Mapped[str] = mapped_column(UUIDString, primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(UUIDString, ForeignKey("organizations.id", ondelete="CASCADE"))
    device_id: Mapped[str] = mapped_column(UUIDString, ForeignKey("devices.id", ondelete="CASCADE"))
    command: Mapped[str] = mapped_column(String(100))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=CommandStatus.PENDING.value)
    result: Mapped[Any] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(String(1000))
    created_by: Mapped[str | None] = mapped_column(UUIDString)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
