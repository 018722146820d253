"""Identity: devices, device tokens, MQTT API tokens, client certificates.

Revision ID: 0002_identity
Revises: 0001_accounts
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mqtthub.db.base

revision: str = "0002_identity"
down_revision: str | Sequence[str] | None = "0001_accounts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("organization_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", mqtthub.db.base.UTCDateTime(), nullable=False),
        sa.Column("updated_at", mqtthub.db.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_devices_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
    )
    op.create_index(op.f("ix_devices_organization_id"), "devices", ["organization_id"])
    op.create_table(
        "device_tokens",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("device_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("hint", sa.String(32), nullable=False),
        sa.Column("created_at", mqtthub.db.base.UTCDateTime(), nullable=False),
        sa.Column("expires_at", mqtthub.db.base.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", mqtthub.db.base.UTCDateTime(), nullable=True),
        sa.Column("last_used_at", mqtthub.db.base.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_device_tokens_device_id_devices"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_device_tokens_token_hash")),
    )
    op.create_index(op.f("ix_device_tokens_device_id"), "device_tokens", ["device_id"])
    op.create_table(
        "mqtt_api_tokens",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("organization_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.String(1000), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("hint", sa.String(32), nullable=False),
        sa.Column("subscribe", sa.JSON(), nullable=False),
        sa.Column("publish", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(36), nullable=True),
        sa.Column("created_at", mqtthub.db.base.UTCDateTime(), nullable=False),
        sa.Column("expires_at", mqtthub.db.base.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", mqtthub.db.base.UTCDateTime(), nullable=True),
        sa.Column("last_used_at", mqtthub.db.base.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_mqtt_api_tokens_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_mqtt_api_tokens_created_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mqtt_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_mqtt_api_tokens_token_hash")),
    )
    op.create_index(op.f("ix_mqtt_api_tokens_organization_id"), "mqtt_api_tokens", ["organization_id"])
    op.create_table(
        "client_certificates",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("serial", sa.String(40), nullable=False),
        sa.Column("organization_id", sa.String(36), nullable=False),
        sa.Column("device_id", sa.String(36), nullable=True),
        sa.Column("user_id", sa.String(36), nullable=True),
        sa.Column("common_name", sa.String(200), nullable=False),
        sa.Column("not_after", mqtthub.db.base.UTCDateTime(), nullable=False),
        sa.Column("created_at", mqtthub.db.base.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", mqtthub.db.base.UTCDateTime(), nullable=True),
        sa.Column("download_hash", sa.String(64), nullable=True),
        sa.Column("download_expires_at", mqtthub.db.base.UTCDateTime(), nullable=True),
        sa.Column("p12_ciphertext", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_client_certificates_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_client_certificates_device_id_devices"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_client_certificates_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_certificates")),
        sa.UniqueConstraint("serial", name=op.f("uq_client_certificates_serial")),
        sa.UniqueConstraint("download_hash", name=op.f("uq_client_certificates_download_hash")),
    )
    op.create_index(op.f("ix_client_certificates_organization_id"), "client_certificates", ["organization_id"])
    op.create_index(op.f("ix_client_certificates_device_id"), "client_certificates", ["device_id"])
    op.create_index(op.f("ix_client_certificates_user_id"), "client_certificates", ["user_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_client_certificates_user_id"), table_name="client_certificates")
    op.drop_index(op.f("ix_client_certificates_device_id"), table_name="client_certificates")
    op.drop_index(op.f("ix_client_certificates_organization_id"), table_name="client_certificates")
    op.drop_table("client_certificates")
    op.drop_index(op.f("ix_mqtt_api_tokens_organization_id"), table_name="mqtt_api_tokens")
    op.drop_table("mqtt_api_tokens")
    op.drop_index(op.f("ix_device_tokens_device_id"), table_name="device_tokens")
    op.drop_table("device_tokens")
    op.drop_index(op.f("ix_devices_organization_id"), table_name="devices")
    op.drop_table("devices")
