"""Seeding the database of integration tests: an organization, a configured product, subscriptions, templates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mqtthub.config import Settings
from mqtthub.crypto import SecretBox
from mqtthub.db import Database
from mqtthub.integrations import repository
from mqtthub.integrations.outbound import OutboundFence
from mqtthub.integrations.schemas import EmailTemplateIn, MqttConfigIn, SubscriptionCreate
from mqtthub.models import EmailTemplate, Organization, Product
from tests.integration.integrations.mosquitto import PASSWORD, USERNAME, Mosquitto

SECRET_KEY = "k" * 40
SECRETS = SecretBox(SECRET_KEY)


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}",
        "data_dir": tmp_path,
        "integration_reconnect_min": 0.1,
        "integration_reconnect_max": 1.0,
        "smtp_starttls": False,
        "outbound_allow": "127.0.0.1",  # the tests' brokers, SMTP and HTTP servers
    }
    values.update(overrides)
    return Settings(**values)


async def seed(
    database: Database,
    broker: Mosquitto,
    subscriptions: list[dict[str, Any]],
    *,
    use_shared: bool = False,
    templates: dict[str, EmailTemplateIn] | None = None,
) -> tuple[str, list[str]]:
    """An organization, a product configured for ``broker``, its subscriptions and templates."""
    async with database.session() as session:
        organization = Organization(name="acme", short_id="acme01")
        session.add(organization)
        await session.flush()
        product = Product(organization_id=organization.id, name="tyres")
        session.add(product)
        await session.flush()
        config = MqttConfigIn.model_validate(
            {
                "broker": {"host": "127.0.0.1", "port": broker.tcp_port, "username": USERNAME, "password": PASSWORD},
                "topics": {"use_shared": use_shared, "shared_group": "hub"},
            }
        )
        saved = await repository.save_config(session, product, config, SECRETS, OutboundFence("127.0.0.1"))
        ids = []
        for item in subscriptions:
            body = SubscriptionCreate.model_validate({"variables": {"application_id": "ABC123"}, **item})
            ids.append((await repository.create_subscription(session, product, body, saved.topics)).id)
        for name, template in (templates or {}).items():
            session.add(
                EmailTemplate(
                    product_id=product.id,
                    name=name,
                    subject=template.subject,
                    body=template.body,
                    recipients=template.recipients,
                )
            )
        return product.id, ids
