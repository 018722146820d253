"""Reading and writing products, MQTT configurations, subscriptions and templates (services only flush).

Every write that changes what a product's connector runs records an :class:`IntegrationConfigChanged` on the
session; the integration service reloads the connector from the committed configuration after the commit
(:mod:`mqtthub.db.changes`), so a change that is rolled back never reaches a running connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mqtthub.auth.deps import AuthenticatedUser, require_org_access
from mqtthub.crypto import SecretBox
from mqtthub.db.base import utcnow
from mqtthub.db.changes import record
from mqtthub.errors import NotFoundError, ValidationFailedError
from mqtthub.integrations.action_specs import dump_actions
from mqtthub.integrations.outbound import OutboundFence
from mqtthub.integrations.runtime import SECRET_FIELDS, compose_topic
from mqtthub.integrations.schemas import (
    MASK,
    BrokerConfig,
    BrokerConfigOut,
    MqttConfigIn,
    SubscriptionCreate,
    SubscriptionUpdate,
    TopicsConfig,
)
from mqtthub.models import ActionFailure, EventSubscription, MqttConfig, Product

NOT_CONFIGURED = "MQTT not configured for this product"


@dataclass(frozen=True, slots=True)
class IntegrationConfigChanged:
    """A product's MQTT configuration or event subscriptions changed, or the product is gone."""

    product_id: str


async def visible_product(
    session: AsyncSession, user: AuthenticatedUser, product_id: str, *, admin: bool = False
) -> Product:
    """The product, if the user's organization owns it (or the user is a platform admin).

    Raises:
        NotFoundError: no such product, or another organization's ("Product not found").
        PermissionDeniedError: ``admin`` is required and the user is only a member.
    """
    product = await session.get(Product, product_id)
    if product is None or not (user.is_platform_admin or user.organization_id == product.organization_id):
        raise NotFoundError("Product not found")
    require_org_access(user, product.organization_id, admin=admin)
    return product


async def config_of(session: AsyncSession, product_id: str) -> MqttConfig | None:
    """The product's MQTT configuration, or None."""
    config: MqttConfig | None = await session.scalar(select(MqttConfig).where(MqttConfig.product_id == product_id))
    return config


async def configured(session: AsyncSession, product_id: str) -> MqttConfig:
    """The product's MQTT configuration.

    Raises:
        NotFoundError: it has none (:data:`NOT_CONFIGURED`).
    """
    config = await config_of(session, product_id)
    if config is None:
        raise NotFoundError(NOT_CONFIGURED)
    return config


async def subscriptions_of(session: AsyncSession, product_id: str) -> list[EventSubscription]:
    """Every subscription of the product, oldest first."""
    rows = await session.scalars(
        select(EventSubscription)
        .where(EventSubscription.product_id == product_id)
        .order_by(EventSubscription.created_at, EventSubscription.id)
    )
    return list(rows)


async def subscription_of(session: AsyncSession, product_id: str, subscription_id: str) -> EventSubscription:
    """One subscription of the product.

    Raises:
        NotFoundError: "Subscription not found".
    """
    row = await session.get(EventSubscription, subscription_id)
    if row is None or row.product_id != product_id:
        raise NotFoundError("Subscription not found")
    return row


#: What a stored secret is bound to: where it goes, as whom, and how it travels there.
DESTINATION_FIELDS = ("host", "port", "username", "protocol", "transport", "use_tls", "verify_cert")


def merge_broker(given: BrokerConfig, stored: dict[str, Any] | None, secrets: SecretBox) -> dict[str, Any]:
    """The broker object to store: secrets encrypted, kept or removed as the request says.

    A stored secret is kept (field left out, ``""`` or ``"***"``) only for the destination it
    was given for: same host, port, username, protocol, transport and TLS settings. Otherwise
    anyone allowed to edit the configuration could send the stored password to a host of
    their choosing (with ``/test`` or a new configuration) and read it there.

    Raises:
        ValidationFailedError: a stored secret would be kept for another destination (the caller must send it),
            or a client certificate comes without its key.
    """
    result = given.model_dump(mode="json", exclude=set(SECRET_FIELDS))
    moved = _changed_destination(result, stored or {})
    for name in SECRET_FIELDS:
        value = getattr(given, name)
        kept = (stored or {}).get(name)
        if name not in given.model_fields_set or value in ("", MASK):
            if kept and moved:
                raise ValidationFailedError(
                    f"send {name} again: {moved} changed, and a stored secret is used only with the host, port, "
                    "username, protocol, transport and TLS settings it was saved for",
                    field=f"broker.{name}",
                )
            result[name] = kept
        elif value is None:
            result[name] = None
        else:
            result[name] = secrets.encrypt(value)
    if result.get("client_cert") and not result.get("client_key"):
        raise ValidationFailedError(
            "a client certificate needs its private key (client_key)", field="broker.client_key"
        )
    return result


def _changed_destination(given: dict[str, Any], stored: dict[str, Any]) -> str | None:
    """The first destination field that differs between ``given`` and ``stored`` (None when they agree)."""
    for name in DESTINATION_FIELDS:
        if name == "verify_cert" and not given.get("use_tls"):
            continue  # no certificate to verify without TLS
        default = BrokerConfig.model_fields[name].default
        before, after = stored.get(name, default), given.get(name, default)
        if name == "host":
            before, after = str(before).lower().rstrip("."), str(after).lower().rstrip(".")
        if before != after:
            return name
    return None


def masked_broker(stored: dict[str, Any]) -> BrokerConfigOut:
    """The stored broker object as responses show it: secrets ``"***"`` when set, null when not."""
    shown = dict(stored)
    for name in SECRET_FIELDS:
        shown[name] = MASK if stored.get(name) else None
    return BrokerConfigOut.model_validate(shown)


async def save_config(
    session: AsyncSession, product: Product, body: MqttConfigIn, secrets: SecretBox, fence: OutboundFence
) -> MqttConfig:
    """Create or replace the product's MQTT configuration.

    Subscription topics are recomputed from the new prefix and pattern.

    Raises:
        ValidationFailedError: the broker's host is one the outbound policy refuses (``broker.host``), or a
            stored secret would be kept for another destination (see :func:`merge_broker`).
    """
    await fence.check(body.broker.host, field="broker.host")
    config = await config_of(session, product.id)
    broker = merge_broker(body.broker, None if config is None else config.broker, secrets)
    topics = body.topics.model_dump(mode="json")
    now = utcnow()
    if config is None:
        config = MqttConfig(product_id=product.id, broker=broker, topics=topics, messages_received=0)
        config.created_at = now
        session.add(config)
    else:
        config.broker = broker
        config.topics = topics
    config.updated_at = now
    for subscription in await subscriptions_of(session, product.id):
        topic = compose_topic(topics["prefix"], topics["pattern"], subscription.variables)
        if topic != subscription.topic:
            subscription.topic = topic
            subscription.updated_at = now
    await session.flush()
    record(session, IntegrationConfigChanged(product.id))
    return config


async def delete_config(session: AsyncSession, config: MqttConfig) -> None:
    """Forget the product's MQTT configuration (its subscriptions and their stats stay); the connector stops."""
    await session.delete(config)
    await session.flush()
    record(session, IntegrationConfigChanged(config.product_id))


async def delete_product(session: AsyncSession, product: Product) -> None:
    """Delete the product with its configuration, subscriptions, templates and logs; the connector stops."""
    await session.delete(product)
    await session.flush()
    record(session, IntegrationConfigChanged(product.id))


async def topics_of(session: AsyncSession, product_id: str) -> dict[str, Any]:
    """The product's stored ``topics`` object (the defaults while it has no MQTT configuration)."""
    config = await config_of(session, product_id)
    return config.topics if config is not None else TopicsConfig().model_dump(mode="json")


async def failures_of(
    session: AsyncSession, product_id: str, *, limit: int, subscription_id: str | None = None
) -> list[ActionFailure]:
    """The product's failure log, newest first (one subscription's only, when ``subscription_id`` is given)."""
    query = select(ActionFailure).where(ActionFailure.product_id == product_id)
    if subscription_id is not None:
        query = query.where(ActionFailure.subscription_id == subscription_id)
    return list(await session.scalars(query.order_by(ActionFailure.created_at.desc(), ActionFailure.id).limit(limit)))


async def create_subscription(
    session: AsyncSession, product: Product, body: SubscriptionCreate, topics: dict[str, Any]
) -> EventSubscription:
    """A new subscription whose topic is the product's prefix and pattern filled with ``variables``."""
    now = utcnow()
    row = EventSubscription(
        product_id=product.id,
        name=body.name,
        topic=compose_topic(topics["prefix"], topics["pattern"], body.variables),
        variables=body.variables,
        enabled=body.enabled,
        description=body.description,
        actions=dump_actions(body.actions),
        messages_received=0,
        actions_executed=0,
        actions_failed=0,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    await session.flush()
    record(session, IntegrationConfigChanged(product.id))
    return row


async def update_subscription(
    session: AsyncSession, row: EventSubscription, body: SubscriptionUpdate, topics: dict[str, Any]
) -> EventSubscription:
    """Apply the fields given in ``body``."""
    given = body.model_fields_set
    if "enabled" in given and body.enabled is not None:
        row.enabled = body.enabled
    if "description" in given:
        row.description = body.description
    if "actions" in given and body.actions is not None:
        row.actions = dump_actions(body.actions)
    if "variables" in given and body.variables is not None:
        row.variables = body.variables
        row.topic = compose_topic(topics["prefix"], topics["pattern"], body.variables)
    row.updated_at = utcnow()
    await session.flush()
    record(session, IntegrationConfigChanged(row.product_id))
    return row


async def delete_subscription(session: AsyncSession, row: EventSubscription) -> None:
    """Remove a subscription with its stats and failure log."""
    await session.delete(row)
    await session.flush()
    record(session, IntegrationConfigChanged(row.product_id))
