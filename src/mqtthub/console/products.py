"""The Integrations pages: the organization's products, and one product with its connection to an external broker.

Each action calls the same functions as ``/api/v1/products`` after the same role gate; a product of another
organization does not exist here (404). A product's page shows its outbound MQTT configuration (a form for
administrators, with **Test connection**), its connector's status, its event subscriptions with their
statistics, and its failure log.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import RedirectResponse, Response

from mqtthub.console import config_form
from mqtthub.console.fielderrors import FieldErrors, FormState
from mqtthub.console.routing import ConsoleRoute
from mqtthub.console.session import PREFIX
from mqtthub.console.templating import Frame, OrgFrame, render
from mqtthub.errors import NotFoundError
from mqtthub.integrations import email_templates, products, repository
from mqtthub.integrations.diagnostics import status_view
from mqtthub.integrations.endpoints import IntegrationsDep
from mqtthub.integrations.schemas import ConnectionStatusJson, ConnectionTestResult, ProductUpdate, TopicsConfigOut
from mqtthub.integrations.service import IntegrationService
from mqtthub.models import Product
from mqtthub.web.deps import SessionDep

FAILURES_SHOWN = 50
"""Newest entries of the failure log on a product's page."""

router = APIRouter(prefix=PREFIX + "/orgs/{org_id}/products", route_class=ConsoleRoute, include_in_schema=False)

Name = Annotated[str, Form(min_length=1, max_length=200)]
Description = Annotated[str, Form(max_length=2000)]


def connector_state(status: ConnectionStatusJson, *, runs_here: bool) -> str:
    """``connected``, ``disconnected``, or ``standby`` when another hub sharing the database runs the connector
    (``status["hub"]`` names the hub holding it while this one runs none)."""
    if status["connected"]:
        return "connected"
    return "standby" if not runs_here and status["hub"] else "disconnected"


async def status_context(integrations: IntegrationService, product_id: str) -> dict[str, Any]:
    """What the connector status panel shows."""
    status = await status_view(integrations, product_id)
    runs_here = integrations.status(product_id) is not None
    return {"status": status, "state": connector_state(status, runs_here=runs_here)}


async def product_page(
    request: Request,
    frame: Frame,
    session: AsyncSession,
    integrations: IntegrationService,
    product: Product,
    *,
    config: FormState | None = None,
    test: ConnectionTestResult | None = None,
    subscription: FormState | None = None,
    template: FormState | None = None,
    status_code: int = 200,
) -> Response:
    """A product's page; a form given here is shown again as typed, with its errors next to its fields."""
    stored = await repository.config_of(session, product.id)
    values, secrets = config_form.stored_values(stored)
    subscriptions = await repository.subscriptions_of(session, product.id)
    templates = await email_templates.templates_of(session, product.id)
    context: dict[str, Any] = {
        "frame": frame,
        "nav": "integrations",
        "product": product,
        "configured": stored is not None,
        "config": config or FormState(kept=values),
        "stored_secrets": secrets,
        "broker_fields": config_form.BROKER,
        "topic_fields": config_form.TOPICS,
        "labels": config_form.LABELS,
        "test": test,
        "test_errors": config.errors if config is not None and test is None else FieldErrors(),
        "topics": TopicsConfigOut.model_validate(await repository.topics_of(session, product.id)),
        "subscriptions": subscriptions,
        "event_names": {row.id: row.name for row in subscriptions},
        "subscription": subscription or FormState(kept={"enabled": "true"}),
        "failures": await repository.failures_of(session, product.id, limit=FAILURES_SHOWN),
        "email_templates": templates,
        "template": template or FormState(),
    }
    if stored is not None:
        context |= await status_context(integrations, product.id)
    return render(request, "product.html", context, status_code=status_code)


@router.get("", summary="Products")
async def products_page(request: Request, frame: OrgFrame, session: SessionDep) -> Response:
    """The organization's products, each with whether it is connected to an external broker."""
    listed = await products.products_of(session, frame.org.id)
    views = [await products.product_view(session, product) for product in listed]
    return render(request, "products.html", {"frame": frame, "nav": "integrations", "products": views})


@router.post("", summary="Create a product")
async def create(frame: OrgFrame, session: SessionDep, name: Name, description: Description = "") -> Response:
    """A new product; its page is where its MQTT configuration is set."""
    product = await products.create_product(session, frame.org.id, name.strip(), description.strip() or None)
    return RedirectResponse(f"{frame.base}/products/{product.id}", status_code=303)


@router.get("/{product_id}", summary="A product")
async def page(
    request: Request,
    product_id: str,
    frame: OrgFrame,
    session: SessionDep,
    integrations: IntegrationsDep,
    template: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """The product: its MQTT configuration, connector status, event subscriptions, e-mail templates (``?template=``
    opens one in the form) and failure log."""
    product = await products.product_of(session, frame.org.id, product_id)
    editing = None
    if template is not None:
        found = [row for row in await email_templates.templates_of(session, product.id) if row.name == template]
        if not found:
            raise NotFoundError("Template not found")
        row = found[0]
        recipients = "\n".join(row.recipients)
        editing = FormState(kept={"name": row.name, "subject": row.subject, "body": row.body, "recipients": recipients})
    return await product_page(request, frame, session, integrations, product, template=editing)


@router.post("/{product_id}", summary="Change a product")
async def update(
    product_id: str, frame: OrgFrame, session: SessionDep, name: Name, description: Description = ""
) -> Response:
    """Rename the product or change its description."""
    product = await products.product_of(session, frame.org.id, product_id)
    body = ProductUpdate(name=name.strip(), description=description.strip() or None)
    await products.update_product(session, product, body)
    return RedirectResponse(f"{frame.base}/products/{product.id}", status_code=303)


@router.post("/{product_id}/delete", summary="Delete a product")
async def delete(product_id: str, frame: OrgFrame, session: SessionDep) -> Response:
    """Delete the product with its configuration, subscriptions and logs; its connector stops."""
    await repository.delete_product(session, await products.product_of(session, frame.org.id, product_id))
    return RedirectResponse(f"{frame.base}/products", status_code=303)
