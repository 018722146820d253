"""What a connector runs from: stored configuration decrypted and compiled, ready to match messages.

The same function serves start-up (every configured product) and live changes (the
request's session, which sees its own not-yet-committed changes), so a configuration
saved through the API is what the connector runs a moment later.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import string
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mqtthub.client.connection import ConnectionOptions
from mqtthub.client.tls import TLSOptions
from mqtthub.config import Settings
from mqtthub.crypto import SecretBox
from mqtthub.integrations.action_specs import ActionSpec, parse_actions
from mqtthub.models import EventSubscription, MqttConfig, Organization, Product

SECRET_FIELDS = ("password", "client_key", "pkcs12", "pkcs12_password")


def compose_topic(prefix: str, pattern: str, variables: dict[str, Any]) -> str:
    """``prefix`` + ``/`` + ``pattern`` with ``{name}`` filled from ``variables``; an unfilled name becomes ``+``."""
    parts: list[str] = []
    for literal, field_name, _spec, _conversion in string.Formatter().parse(pattern):
        parts.append(literal)
        if field_name is not None:
            value = variables.get(field_name)
            parts.append("+" if value is None or value == "" else str(value))
    filled = "".join(parts)
    if not prefix:
        return filled
    return f"{prefix.rstrip('/')}/{filled.lstrip('/')}"


def instance_id(settings: Settings) -> str:
    """This hub's name in generated client ids: stable across restarts of the same installation."""
    if settings.integration_instance_id:
        return settings.integration_instance_id
    seed = f"{socket.gethostname()}:{settings.data_dir.resolve()}".encode()
    return hashlib.sha256(seed).hexdigest()[:8]


def generated_client_id(settings: Settings, product_id: str) -> str:
    """The client id used when a configuration leaves ``client_id`` null."""
    return f"mqtthub-{instance_id(settings)}-{product_id.replace('-', '')[:12]}"


@dataclass(frozen=True)
class SubscriptionRuntime:
    """An enabled event subscription, compiled."""

    id: str
    name: str
    topic: str
    actions: list[ActionSpec]


@dataclass(frozen=True)
class ProductRuntime:
    """Everything one connector needs."""

    product_id: str
    organization_id: str
    organization_short_id: str
    options: ConnectionOptions
    qos: int
    use_shared: bool
    shared_group: str
    event_field: str
    subscriptions: tuple[SubscriptionRuntime, ...]
    messages_received: int
    last_message_at: Any

    def topic_filters(self) -> dict[str, int]:
        """What to subscribe on the remote broker: one filter per distinct subscription topic."""
        filters: dict[str, int] = {}
        for subscription in self.subscriptions:
            topic = subscription.topic
            if self.use_shared:
                topic = f"$share/{self.shared_group}/{topic}"
            filters[topic] = self.qos
        return filters


def connection_options(broker: dict[str, Any], secrets: SecretBox, client_id: str, **extra: Any) -> ConnectionOptions:
    """Connection options from a stored (encrypted) broker object."""

    def secret(name: str) -> str | None:
        value = broker.get(name)
        return secrets.decrypt(value) if value else None

    tls: TLSOptions | None = None
    if broker.get("use_tls"):
        pkcs12 = secret("pkcs12")
        tls = TLSOptions(
            verify_cert=bool(broker.get("verify_cert", True)),
            ca_pem=broker.get("ca_cert"),
            client_cert_pem=broker.get("client_cert"),
            client_key_pem=secret("client_key"),
            pkcs12=base64.b64decode(pkcs12) if pkcs12 else None,
            pkcs12_password=secret("pkcs12_password"),
            alpn=tuple(broker.get("alpn") or ()),
        )
    return ConnectionOptions(
        host=broker["host"],
        port=int(broker["port"]),
        protocol=broker.get("protocol", "3.1.1"),
        transport=broker.get("transport", "tcp"),
        ws_path=broker.get("ws_path", "/mqtt"),
        tls=tls,
        username=broker.get("username"),
        password=secret("password"),
        client_id=broker.get("client_id") or client_id,
        keep_alive=int(broker.get("keep_alive", 60)),
        clean_session=bool(broker.get("clean_session", True)),
        **extra,
    )


async def load_runtime(
    session: AsyncSession, product_id: str, secrets: SecretBox, settings: Settings
) -> ProductRuntime | None:
    """The runtime of one product, or None when it has no MQTT configuration."""
    row = (
        await session.execute(
            select(MqttConfig, Organization.id, Organization.short_id)
            .join(Product, Product.id == MqttConfig.product_id)
            .join(Organization, Organization.id == Product.organization_id)
            .where(MqttConfig.product_id == product_id)
        )
    ).one_or_none()
    if row is None:
        return None
    config, organization_id, short_id = row
    subscriptions = await session.scalars(
        select(EventSubscription)
        .where(EventSubscription.product_id == product_id, EventSubscription.enabled.is_(True))
        .order_by(EventSubscription.created_at, EventSubscription.id)
    )
    topics = config.topics
    return ProductRuntime(
        product_id=product_id,
        organization_id=organization_id,
        organization_short_id=short_id,
        options=connection_options(config.broker, secrets, generated_client_id(settings, product_id)),
        qos=int(topics.get("qos", 1)),
        use_shared=bool(topics.get("use_shared", True)),
        shared_group=str(topics.get("shared_group", "bre")),
        event_field=str(topics.get("event_field", "event")),
        subscriptions=tuple(
            SubscriptionRuntime(item.id, item.name, item.topic, parse_actions(item.actions)) for item in subscriptions
        ),
        messages_received=config.messages_received,
        last_message_at=config.last_message_at,
    )


async def configured_products(session: AsyncSession) -> list[str]:
    """Ids of every product with an MQTT configuration."""
    return list(await session.scalars(select(MqttConfig.product_id)))


async def configuration_versions(session: AsyncSession) -> dict[str, tuple[object, ...]]:
    """Every configured product with a value that changes whenever its connector's configuration does.

    Hubs sharing a database learn of each other's changes by comparing these, since a change made
    through one hub is an event on that hub only. The repository stamps ``updated_at`` on every
    change, and a deleted subscription lowers the count.
    """
    configs = dict((await session.execute(select(MqttConfig.product_id, MqttConfig.updated_at))).tuples().all())
    subscriptions = {
        product_id: (count, latest)
        for product_id, count, latest in (
            await session.execute(
                select(EventSubscription.product_id, func.count(), func.max(EventSubscription.updated_at)).group_by(
                    EventSubscription.product_id
                )
            )
        ).tuples()
    }
    return {product_id: (updated, *subscriptions.get(product_id, (0, None))) for product_id, updated in configs.items()}
