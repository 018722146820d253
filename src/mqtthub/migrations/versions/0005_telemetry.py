"""Telemetry: definitions, readings, device status, alerts, rejected messages, commands.

Revision ID: 0005_telemetry
Revises: 0001_accounts
Depends on: 0002_identity (devices)
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mqtthub.db.base

revision: str = "0005_telemetry"
down_revision: str | Sequence[str] | None = "0001_accounts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = "0002_identity"

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _device_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["device_id"], ["devices.id"], name=op.f(f"fk_{table}_device_id_devices"), ondelete="CASCADE"
    )


def _org_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["organization_id"],
        ["organizations.id"],
        name=op.f(f"fk_{table}_organization_id_organizations"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "telemetry_definitions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.String(36), nullable=False),
        sa.Column("device_id", sa.String(36), nullable=False),
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("unit", sa.String(32), nullable=False),
        sa.Column("min_threshold", sa.Float(), nullable=True),
        sa.Column("max_threshold", sa.Float(), nullable=True),
        sa.Column("created_at", mqtthub.db.base.UTCDateTime(), nullable=False),
        _device_fk("telemetry_definitions"),
        _org_fk("telemetry_definitions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemetry_definitions")),
        sa.UniqueConstraint("device_id", "key", name=op.f("uq_telemetry_definitions_device_id")),
    )
    op.create_index(op.f("ix_telemetry_definitions_organization_id"), "telemetry_definitions", ["organization_id"])
    op.create_table(
        "telemetry_values",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("device_id", sa.String(36), nullable=False),
        sa.Column("definition_id", sa.Integer(), nullable=True),
        sa.Column("sensor", sa.String(100), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("received_ms", sa.BigInteger(), nullable=False),
        _device_fk("telemetry_values"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemetry_values")),
    )
    op.create_index("ix_telemetry_values_device_id_ts_ms", "telemetry_values", ["device_id", "ts_ms"])
    op.create_index("ix_telemetry_values_device_id_sensor_ts_ms", "telemetry_values", ["device_id", "sensor", "ts_ms"])
    op.create_index("ix_telemetry_values_ts_ms", "telemetry_values", ["ts_ms"])
    op.create_table(
        "device_status",
        sa.Column("device_id", sa.String(36), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("battery", sa.Float(), nullable=True),
        sa.Column("signal", sa.Float(), nullable=True),
        sa.Column("metadata", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("last_seen", mqtthub.db.base.UTCDateTime(), nullable=True),
        sa.Column("status_at", mqtthub.db.base.UTCDateTime(), nullable=True),
        sa.Column("connected_at", mqtthub.db.base.UTCDateTime(), nullable=True),
        sa.Column("disconnected_at", mqtthub.db.base.UTCDateTime(), nullable=True),
        _device_fk("device_status"),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_device_status")),
    )
    op.create_table(
        "telemetry_alerts",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("organization_id", sa.String(36), nullable=False),
        sa.Column("device_id", sa.String(36), nullable=False),
        sa.Column("definition_id", sa.Integer(), nullable=True),
        sa.Column("sensor", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("min_threshold", sa.Float(), nullable=True),
        sa.Column("max_threshold", sa.Float(), nullable=True),
        sa.Column("created_at", mqtthub.db.base.UTCDateTime(), nullable=False),
        _device_fk("telemetry_alerts"),
        _org_fk("telemetry_alerts"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemetry_alerts")),
    )
    op.create_index(op.f("ix_telemetry_alerts_device_id"), "telemetry_alerts", ["device_id"])
    op.create_index(
        "ix_telemetry_alerts_organization_id_created_at", "telemetry_alerts", ["organization_id", "created_at"]
    )
    op.create_table(
        "rejected_messages",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.String(36), nullable=True),
        sa.Column("device_id", sa.String(200), nullable=True),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("topic", sa.String(1024), nullable=False),
        sa.Column("field", sa.String(100), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("received_at", mqtthub.db.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rejected_messages")),
    )
    op.create_index(
        "ix_rejected_messages_organization_id_received_at", "rejected_messages", ["organization_id", "received_at"]
    )
    op.create_table(
        "device_commands",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("organization_id", sa.String(36), nullable=False),
        sa.Column("device_id", sa.String(36), nullable=False),
        sa.Column("command", sa.String(100), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.String(1000), nullable=True),
        sa.Column("created_by", sa.String(36), nullable=True),
        sa.Column("created_at", mqtthub.db.base.UTCDateTime(), nullable=False),
        sa.Column("delivered_at", mqtthub.db.base.UTCDateTime(), nullable=True),
        sa.Column("completed_at", mqtthub.db.base.UTCDateTime(), nullable=True),
        _device_fk("device_commands"),
        _org_fk("device_commands"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_commands")),
    )
    op.create_index("ix_device_commands_device_id_created_at", "device_commands", ["device_id", "created_at"])


def downgrade() -> None:
    op.drop_table("device_commands")
    op.drop_table("rejected_messages")
    op.drop_table("telemetry_alerts")
    op.drop_table("device_status")
    op.drop_table("telemetry_values")
    op.drop_table("telemetry_definitions")
