"""A product's outbound MQTT configuration in the console: save, remove, test, status, reconnect.

Saving builds the API's ``MqttConfigIn`` from the form and calls the same function as
``PUT …/mqtt-config``; its validation errors (and the outbound policy's refusal of a host) are shown next to
their fields. **Test connection** calls the code of ``POST …/mqtt-config/test``: a real connection attempt
with the settings as typed (blank secrets are the stored ones), answering the measured latency, or the
CONNACK code and reason, or the network error. The status panel polls the same status as
``GET …/mqtt-config/status``.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from mqtthub.console import config_form
from mqtthub.console.fielderrors import FieldErrors, FormState, dotted
from mqtthub.console.products import product_page, status_context
from mqtthub.console.routing import ConsoleRoute
from mqtthub.console.session import PREFIX
from mqtthub.console.templating import OrgFrame, is_htmx, render
from mqtthub.errors import ValidationFailedError
from mqtthub.integrations import products, repository
from mqtthub.integrations.diagnostics import check_connection
from mqtthub.integrations.endpoints import IntegrationsDep
from mqtthub.integrations.schemas import BrokerConfig, ConnectionTestResult, MqttConfigIn
from mqtthub.web.deps import SessionDep

logger = logging.getLogger(__name__)

router = APIRouter(
    prefix=PREFIX + "/orgs/{org_id}/products/{product_id}/mqtt-config",
    route_class=ConsoleRoute,
    include_in_schema=False,
)


@router.post("", summary="Save a product's MQTT configuration")
async def save(
    request: Request, product_id: str, frame: OrgFrame, session: SessionDep, integrations: IntegrationsDep
) -> Response:
    """Save the configuration (the connector reconnects with it once committed), or show the form's errors."""
    product = await products.product_of(session, frame.org.id, product_id)
    form = await request.form()
    errors = FieldErrors()
    try:
        body = MqttConfigIn.model_validate(await config_form.config_body(form))
        await repository.save_config(session, product, body, integrations.secrets, integrations.fence)
    except ValidationError as exc:
        errors.add_validation(exc)
    except ValidationFailedError as exc:
        errors.add_refusal(exc, str)
    if errors:
        logger.info("console %s: refused fields %s", request.url.path, errors.fields())
        state = FormState(errors=errors, kept=config_form.typed_values(form))
        return await product_page(request, frame, session, integrations, product, config=state, status_code=422)
    return RedirectResponse(f"{frame.base}/products/{product.id}#connection", status_code=303)


@router.post("/delete", summary="Remove a product's MQTT configuration")
async def remove(product_id: str, frame: OrgFrame, session: SessionDep) -> Response:
    """Disconnect and forget the configuration; subscriptions and their statistics are kept."""
    product = await products.product_of(session, frame.org.id, product_id)
    await repository.delete_config(session, await repository.configured(session, product.id))
    return RedirectResponse(f"{frame.base}/products/{product.id}", status_code=303)


@router.post("/test", summary="Test a product's MQTT connection")
async def test(
    request: Request, product_id: str, frame: OrgFrame, session: SessionDep, integrations: IntegrationsDep
) -> Response:
    """Connect once with the settings as typed; htmx gets the result alone, a plain form the page with it."""
    product = await products.product_of(session, frame.org.id, product_id)
    form = await request.form()
    errors = FieldErrors()
    result: ConnectionTestResult | None = None
    try:
        broker = BrokerConfig.model_validate((await config_form.config_body(form))["broker"])
        config = await repository.config_of(session, product.id)
        result = await check_connection(integrations, product.id, broker, None if config is None else config.broker)
    except ValidationError as exc:
        errors.add_validation(exc, lambda location: dotted(("broker", *location)))
    except ValidationFailedError as exc:
        errors.add_refusal(exc, str)
    if errors:
        logger.info("console %s: refused fields %s", request.url.path, errors.fields())
    status_code = 422 if errors else 200
    if is_htmx(request):
        context = {"test": result, "test_errors": errors, "labels": config_form.LABELS}
        return render(request, "partials/connection_test.html", context, status_code=status_code)
    state = FormState(errors=errors, kept=config_form.typed_values(form))
    return await product_page(
        request, frame, session, integrations, product, config=state, test=result, status_code=status_code
    )


@router.get("/status", summary="A product's connector status")
async def status(
    request: Request, product_id: str, frame: OrgFrame, session: SessionDep, integrations: IntegrationsDep
) -> Response:
    """The connector's status panel (polled by the product's page)."""
    product = await products.product_of(session, frame.org.id, product_id)
    await repository.configured(session, product.id)
    context = {"frame": frame, "product": product} | await status_context(integrations, product.id)
    return render(request, "partials/connector_status.html", context)


@router.post("/reconnect", summary="Reconnect a product's connector")
async def reconnect(
    request: Request, product_id: str, frame: OrgFrame, session: SessionDep, integrations: IntegrationsDep
) -> Response:
    """Drop the connection and connect again at once; htmx gets the status panel."""
    product = await products.product_of(session, frame.org.id, product_id)
    await repository.configured(session, product.id)
    integrations.reconnect(product.id)
    if not is_htmx(request):
        return RedirectResponse(f"{frame.base}/products/{product.id}#connection", status_code=303)
    context = {"frame": frame, "product": product, "reconnecting": True}
    return render(request, "partials/connector_status.html", context | await status_context(integrations, product.id))
