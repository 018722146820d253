"""A product's e-mail templates in the console: create or replace one, delete one.

The form builds the API's ``EmailTemplateIn`` and calls the same function as ``PUT …/email-templates/{name}``;
a template that does not parse is shown next to its field (subject, body or recipients).
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from mqtthub.console.fielderrors import FORM, FieldErrors, FormState
from mqtthub.console.products import product_page
from mqtthub.console.routing import ConsoleRoute
from mqtthub.console.session import PREFIX
from mqtthub.console.templating import OrgFrame
from mqtthub.errors import ValidationFailedError
from mqtthub.integrations import email_templates, products
from mqtthub.integrations.endpoints import IntegrationsDep
from mqtthub.integrations.schemas import EmailTemplateIn
from mqtthub.web.deps import SessionDep

logger = logging.getLogger(__name__)

router = APIRouter(
    prefix=PREFIX + "/orgs/{org_id}/products/{product_id}/email-templates",
    route_class=ConsoleRoute,
    include_in_schema=False,
)


def _field(location: tuple[int | str, ...]) -> str:
    return str(location[0]) if location and location[0] in ("subject", "body", "recipients") else FORM


@router.post("", summary="Save an e-mail template")
async def save(
    request: Request, product_id: str, frame: OrgFrame, session: SessionDep, integrations: IntegrationsDep
) -> Response:
    """Create the template named in the form, or replace it; or show the form's errors."""
    product = await products.product_of(session, frame.org.id, product_id)
    form = await request.form()
    typed = {name: value for name, value in form.items() if isinstance(value, str)}
    recipients = [line.strip() for line in typed.get("recipients", "").splitlines() if line.strip()]
    errors = FieldErrors()
    try:
        body = EmailTemplateIn.model_validate(
            {"subject": typed.get("subject", ""), "body": typed.get("body", ""), "recipients": recipients}
        )
        await email_templates.save_template(session, product.id, typed.get("name", "").strip(), body)
    except ValidationError as exc:
        errors.add_validation(exc, _field)
    except ValidationFailedError as exc:
        errors.add_refusal(exc, str)
    if errors:
        logger.info("console %s: refused fields %s", request.url.path, errors.fields())
        state = FormState(errors=errors, kept=typed)
        return await product_page(request, frame, session, integrations, product, template=state, status_code=422)
    return RedirectResponse(f"{frame.base}/products/{product.id}#email-templates", status_code=303)


@router.post("/{name}/delete", summary="Delete an e-mail template")
async def delete(product_id: str, name: str, frame: OrgFrame, session: SessionDep) -> Response:
    """Delete the template; e-mail actions that name it fail (and are logged) until it exists again."""
    product = await products.product_of(session, frame.org.id, product_id)
    await email_templates.delete_template(session, product.id, name)
    return RedirectResponse(f"{frame.base}/products/{product.id}#email-templates", status_code=303)
