"""Messaging API: recorded topic filters and message history.

Revision ID: 0004_messaging
Revises: 0001_accounts
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mqtthub.db.base

revision: str = "0004_messaging"
down_revision: str | Sequence[str] | None = "0001_accounts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "message_subscriptions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("organization_id", sa.String(36), nullable=False),
        sa.Column("topic_filter", sa.String(1024), nullable=False),
        sa.Column("qos", sa.Integer(), nullable=False),
        sa.Column("created_at", mqtthub.db.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_message_subscriptions_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_subscriptions")),
        sa.UniqueConstraint("organization_id", "topic_filter", name=op.f("uq_message_subscriptions_organization_id")),
    )
    op.create_index(op.f("ix_message_subscriptions_organization_id"), "message_subscriptions", ["organization_id"])
    op.create_table(
        "message_history",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("organization_id", sa.String(36), nullable=False),
        sa.Column("topic", sa.String(1024), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("qos", sa.Integer(), nullable=False),
        sa.Column("retain", sa.Boolean(), nullable=False),
        sa.Column("received_at", mqtthub.db.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_message_history_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_history")),
    )
    op.create_index(
        "ix_message_history_organization_id_received_at", "message_history", ["organization_id", "received_at"]
    )
    op.create_index("ix_message_history_organization_id_topic", "message_history", ["organization_id", "topic"])


def downgrade() -> None:
    op.drop_index("ix_message_history_organization_id_topic", table_name="message_history")
    op.drop_index("ix_message_history_organization_id_received_at", table_name="message_history")
    op.drop_table("message_history")
    op.drop_index(op.f("ix_message_subscriptions_organization_id"), table_name="message_subscriptions")
    op.drop_table("message_subscriptions")
