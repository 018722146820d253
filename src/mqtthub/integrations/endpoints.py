"""The integrations API: products, their MQTT configuration (document 002), subscriptions, templates, logs.

Every endpoint needs a session token. Products of another organization do not exist for
the caller (404 "Product not found"); changing anything needs an org admin (403 otherwise).
A change reaches the running connector once it is committed: the connector reloads its
configuration in the background a moment after the response, so ``requires_restart`` is always false.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from mqtthub.auth.deps import CurrentUser, require_org_access
from mqtthub.errors import ValidationFailedError
from mqtthub.integrations import email_templates, products, repository
from mqtthub.integrations.diagnostics import check_connection, status_view
from mqtthub.integrations.schemas import (
    BrokerConfig,
    ConnectionStatusJson,
    ConnectionTestResult,
    Done,
    EmailTemplateIn,
    FailureList,
    MqttConfigIn,
    MqttConfigJson,
    MqttConfigSaved,
    MqttConfigView,
    ProductCreate,
    ProductList,
    ProductOut,
    ProductUpdate,
    SubscriptionCreate,
    SubscriptionJson,
    SubscriptionList,
    SubscriptionSaved,
    SubscriptionUpdate,
    TemplateJson,
    TemplateList,
    TemplateSaved,
    TopicsConfigOut,
    stats_of,
)
from mqtthub.integrations.service import IntegrationService
from mqtthub.models import EmailTemplate, EventSubscription, MqttConfig
from mqtthub.web.deps import SessionDep
from mqtthub.web.params import Limit
from mqtthub.web.state import provide

router = APIRouter(prefix="/api/v1/products", tags=["integrations"])

IntegrationsDep = Annotated[IntegrationService, Depends(provide(IntegrationService))]
"""The connectors to external brokers, with the hub's settings, secrets and outbound policy."""


# --- products --------------------------------------------------------------------------------------------


@router.post("", status_code=201, summary="Create a product")
async def create_product(body: ProductCreate, user: CurrentUser, session: SessionDep) -> ProductOut:
    """A product of the caller's organization (a platform admin names the organization)."""
    organization_id = body.organization_id or user.organization_id
    if organization_id is None:
        raise ValidationFailedError("organization_id is required for a user without an organization")
    require_org_access(user, organization_id, admin=True)
    product = await products.create_product(session, organization_id, body.name, body.description)
    return await products.product_view(session, product)


@router.get("", summary="List products")
async def list_products(user: CurrentUser, session: SessionDep) -> ProductList:
    """The products of the caller's organization (every product for a platform admin)."""
    listed = await products.products_of(session, None if user.is_platform_admin else user.organization_id)
    return {"products": [await products.product_view(session, product) for product in listed]}


@router.get("/{product_id}", summary="Get a product")
async def get_product(product_id: str, user: CurrentUser, session: SessionDep) -> ProductOut:
    """One product."""
    return await products.product_view(session, await repository.visible_product(session, user, product_id))


@router.patch("/{product_id}", summary="Update a product")
async def update_product(product_id: str, body: ProductUpdate, user: CurrentUser, session: SessionDep) -> ProductOut:
    """Change the name or description."""
    product = await repository.visible_product(session, user, product_id, admin=True)
    return await products.product_view(session, await products.update_product(session, product, body))


@router.delete("/{product_id}", status_code=204, summary="Delete a product")
async def delete_product(product_id: str, user: CurrentUser, session: SessionDep) -> Response:
    """Delete the product with its configuration, subscriptions, templates and logs; its connector stops."""
    product = await repository.visible_product(session, user, product_id, admin=True)
    await repository.delete_product(session, product)
    return Response(status_code=204)


# --- MQTT configuration ----------------------------------------------------------------------------------


def _config_out(config: MqttConfig) -> MqttConfigJson:
    return {
        "id": config.id,
        "product_id": config.product_id,
        "broker": repository.masked_broker(config.broker),
        "topics": TopicsConfigOut.model_validate(config.topics),
        "created_at": config.created_at.isoformat(),
        "updated_at": config.updated_at.isoformat(),
    }


def _subscription_out(row: EventSubscription) -> SubscriptionJson:
    return {
        "id": row.id,
        "name": row.name,
        "topic": row.topic,
        "variables": row.variables,
        "enabled": row.enabled,
        "description": row.description,
        "actions": row.actions,
        "stats": stats_of(row),
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


@router.get("/{product_id}/mqtt-config", summary="Get full MQTT configuration")
async def get_mqtt_config(
    product_id: str, integrations: IntegrationsDep, user: CurrentUser, session: SessionDep
) -> MqttConfigView:
    """Configuration (secrets masked), subscriptions with stats, and live status."""
    await repository.visible_product(session, user, product_id)
    config = await repository.config_of(session, product_id)
    if config is None:
        return {
            "product_id": product_id,
            "mqtt_config": None,
            "subscriptions": None,
            "status": None,
            "message": repository.NOT_CONFIGURED,
        }
    subscriptions = await repository.subscriptions_of(session, product_id)
    return {
        "product_id": product_id,
        "mqtt_config": _config_out(config),
        "subscriptions": [_subscription_out(row) for row in subscriptions],
        "status": await status_view(integrations, product_id),
    }


@router.put("/{product_id}/mqtt-config", summary="Create/update MQTT configuration")
async def put_mqtt_config(
    product_id: str, body: MqttConfigIn, integrations: IntegrationsDep, user: CurrentUser, session: SessionDep
) -> MqttConfigSaved:
    """Save the configuration; the connector reconnects with it once it is committed (no restart needed)."""
    product = await repository.visible_product(session, user, product_id, admin=True)
    config = await repository.save_config(session, product, body, integrations.secrets, integrations.fence)
    return {
        "status": "success",
        # Document 002 answers "updated" whether or not a configuration existed before.
        "message": "MQTT configuration updated successfully",
        "requires_restart": False,
        "mqtt_config": _config_out(config),
    }


@router.delete("/{product_id}/mqtt-config", summary="Remove MQTT configuration")
async def delete_mqtt_config(product_id: str, user: CurrentUser, session: SessionDep) -> Done:
    """Disconnect and forget the configuration; subscriptions and their stats are kept."""
    await repository.visible_product(session, user, product_id, admin=True)
    await repository.delete_config(session, await repository.configured(session, product_id))
    return {"status": "success", "message": "MQTT configuration removed"}


@router.post("/{product_id}/mqtt-config/test", summary="Test MQTT connection")
async def test_mqtt_connection(
    product_id: str, body: BrokerConfig, integrations: IntegrationsDep, user: CurrentUser, session: SessionDep
) -> ConnectionTestResult:
    """A real connection attempt with these settings, beside the running connector (which is not touched).

    Secrets left out (or ``"***"``) are taken from the stored configuration. The test uses
    its own client id, so the broker does not take over the running connector's session.
    """
    await repository.visible_product(session, user, product_id, admin=True)
    config = await repository.config_of(session, product_id)
    return await check_connection(integrations, product_id, body, None if config is None else config.broker)


@router.post("/{product_id}/mqtt-config/reconnect", summary="Force reconnect")
async def reconnect(product_id: str, integrations: IntegrationsDep, user: CurrentUser, session: SessionDep) -> Done:
    """Drop the connection and connect again at once."""
    await repository.visible_product(session, user, product_id, admin=True)
    await repository.configured(session, product_id)
    integrations.reconnect(product_id)
    return {"status": "success", "message": "Reconnection triggered. Check status in a few seconds."}


@router.get("/{product_id}/mqtt-config/status", summary="Get connection status")
async def get_status(
    product_id: str, integrations: IntegrationsDep, user: CurrentUser, session: SessionDep
) -> ConnectionStatusJson:
    """Connection state, errors, counters, broker info and the recent connect/disconnect/error events."""
    await repository.visible_product(session, user, product_id)
    await repository.configured(session, product_id)
    return await status_view(integrations, product_id)


@router.get("/{product_id}/mqtt-config/failures", summary="List failed actions")
async def list_failures(
    product_id: str,
    user: CurrentUser,
    session: SessionDep,
    limit: Limit = 100,
    subscription_id: str | None = None,
) -> FailureList:
    """The failure log: each failed action with its error, newest first."""
    await repository.visible_product(session, user, product_id)
    rows = await repository.failures_of(session, product_id, limit=limit, subscription_id=subscription_id)
    return {
        "failures": [
            {
                "id": row.id,
                "subscription_id": row.subscription_id,
                "action_index": row.action_index,
                "action_type": row.action_type,
                "error": row.error,
                "topic": row.topic,
                "created_at": row.created_at.isoformat(),
            }
            for row in rows
        ]
    }


# --- subscriptions ---------------------------------------------------------------------------------------


@router.get("/{product_id}/mqtt-config/subscriptions", summary="List event subscriptions")
async def list_subscriptions(product_id: str, user: CurrentUser, session: SessionDep) -> SubscriptionList:
    """Every subscription with its actions and stats."""
    await repository.visible_product(session, user, product_id)
    return {"subscriptions": [_subscription_out(row) for row in await repository.subscriptions_of(session, product_id)]}


@router.post("/{product_id}/mqtt-config/subscriptions", status_code=201, summary="Create a subscription")
async def create_subscription(
    product_id: str, body: SubscriptionCreate, integrations: IntegrationsDep, user: CurrentUser, session: SessionDep
) -> SubscriptionSaved:
    """A subscription for the event ``name`` on the topic built from the product's prefix, pattern and ``variables``."""
    product = await repository.visible_product(session, user, product_id, admin=True)
    await integrations.check_actions(body.actions)
    row = await repository.create_subscription(session, product, body, await repository.topics_of(session, product_id))
    return {"status": "success", "message": "Subscription created successfully", "subscription": _subscription_out(row)}


@router.put("/{product_id}/mqtt-config/subscriptions/{subscription_id}", summary="Update subscription")
async def update_subscription(
    product_id: str,
    subscription_id: str,
    body: SubscriptionUpdate,
    integrations: IntegrationsDep,
    user: CurrentUser,
    session: SessionDep,
) -> SubscriptionSaved:
    """Enable/disable, describe, re-target or replace the actions; the connector follows once committed."""
    await repository.visible_product(session, user, product_id, admin=True)
    row = await repository.subscription_of(session, product_id, subscription_id)
    await integrations.check_actions(body.actions or [])
    row = await repository.update_subscription(session, row, body, await repository.topics_of(session, product_id))
    return {"status": "success", "message": "Subscription updated successfully", "subscription": _subscription_out(row)}


@router.delete("/{product_id}/mqtt-config/subscriptions/{subscription_id}", summary="Delete subscription")
async def delete_subscription(product_id: str, subscription_id: str, user: CurrentUser, session: SessionDep) -> Done:
    """Remove the subscription with its stats and failure log."""
    await repository.visible_product(session, user, product_id, admin=True)
    await repository.delete_subscription(
        session, await repository.subscription_of(session, product_id, subscription_id)
    )
    return {"status": "success", "message": "Subscription deleted successfully"}


# --- e-mail templates ------------------------------------------------------------------------------------


def _template_out(row: EmailTemplate) -> TemplateJson:
    return {
        "name": row.name,
        "subject": row.subject,
        "body": row.body,
        "recipients": row.recipients,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


@router.get("/{product_id}/email-templates", summary="List e-mail templates")
async def list_templates(product_id: str, user: CurrentUser, session: SessionDep) -> TemplateList:
    """The templates e-mail actions of this product can send."""
    await repository.visible_product(session, user, product_id)
    return {"templates": [_template_out(row) for row in await email_templates.templates_of(session, product_id)]}


@router.put("/{product_id}/email-templates/{name}", summary="Create or replace an e-mail template")
async def put_template(
    product_id: str, name: str, body: EmailTemplateIn, user: CurrentUser, session: SessionDep
) -> TemplateSaved:
    """Subject, body and recipients are sandboxed Jinja2 templates over the event (``{{event.policy_id}}``)."""
    await repository.visible_product(session, user, product_id, admin=True)
    row = await email_templates.save_template(session, product_id, name, body)
    return {"status": "success", "template": _template_out(row)}


@router.delete("/{product_id}/email-templates/{name}", summary="Delete an e-mail template")
async def delete_template(product_id: str, name: str, user: CurrentUser, session: SessionDep) -> Done:
    """Actions that name it fail (and are logged) until it exists again."""
    await repository.visible_product(session, user, product_id, admin=True)
    await email_templates.delete_template(session, product_id, name)
    return {"status": "success", "message": "Template deleted"}
