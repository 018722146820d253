"""Products, outbound MQTT configurations, event subscriptions, e-mail templates and action failures.

Revision ID: 0007_integrations
Revises: 0001_accounts
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mqtthub.db.base

revision: str = "0007_integrations"
down_revision: str | Sequence[str] | None = "0001_accounts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete="CASCADE"
    )


def upgrade() -> None:
    utc = mqtthub.db.base.UTCDateTime
    op.create_table(
        "products",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("organization_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", utc(), nullable=False),
        sa.Column("updated_at", utc(), nullable=False),
        _fk("products", "organization_id", "organizations"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
    )
    op.create_index(op.f("ix_products_organization_id"), "products", ["organization_id"])
    op.create_table(
        "mqtt_configs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("product_id", sa.String(36), nullable=False),
        sa.Column("broker", sa.JSON(), nullable=False),
        sa.Column("topics", sa.JSON(), nullable=False),
        sa.Column("messages_received", sa.Integer(), nullable=False),
        sa.Column("last_message_at", utc(), nullable=True),
        sa.Column("created_at", utc(), nullable=False),
        sa.Column("updated_at", utc(), nullable=False),
        _fk("mqtt_configs", "product_id", "products"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mqtt_configs")),
        sa.UniqueConstraint("product_id", name=op.f("uq_mqtt_configs_product_id")),
    )
    op.create_table(
        "event_subscriptions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("product_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("topic", sa.String(1000), nullable=False),
        sa.Column("variables", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column("messages_received", sa.Integer(), nullable=False),
        sa.Column("last_message_at", utc(), nullable=True),
        sa.Column("actions_executed", sa.Integer(), nullable=False),
        sa.Column("actions_failed", sa.Integer(), nullable=False),
        sa.Column("created_at", utc(), nullable=False),
        sa.Column("updated_at", utc(), nullable=False),
        _fk("event_subscriptions", "product_id", "products"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_subscriptions")),
    )
    op.create_index(op.f("ix_event_subscriptions_product_id"), "event_subscriptions", ["product_id"])
    op.create_table(
        "email_templates",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("product_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("created_at", utc(), nullable=False),
        sa.Column("updated_at", utc(), nullable=False),
        _fk("email_templates", "product_id", "products"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_templates")),
        sa.UniqueConstraint("product_id", "name", name=op.f("uq_email_templates_product_id")),
    )
    op.create_table(
        "action_failures",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("product_id", sa.String(36), nullable=False),
        sa.Column("subscription_id", sa.String(36), nullable=False),
        sa.Column("action_index", sa.Integer(), nullable=False),
        sa.Column("action_type", sa.String(50), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("topic", sa.String(1000), nullable=False),
        sa.Column("created_at", utc(), nullable=False),
        _fk("action_failures", "product_id", "products"),
        _fk("action_failures", "subscription_id", "event_subscriptions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_action_failures")),
    )
    op.create_index(op.f("ix_action_failures_product_id"), "action_failures", ["product_id"])
    op.create_index(op.f("ix_action_failures_subscription_id"), "action_failures", ["subscription_id"])
    op.create_index(op.f("ix_action_failures_created_at"), "action_failures", ["created_at"])


def downgrade() -> None:
    op.drop_table("action_failures")
    op.drop_table("email_templates")
    op.drop_table("event_subscriptions")
    op.drop_table("mqtt_configs")
    op.drop_table("products")
