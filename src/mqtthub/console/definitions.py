"""A device's telemetry definitions and their thresholds: list, create, change and delete them from the console.

The forms are validated by the API's own request models (``DefinitionCreate``, ``DefinitionUpdate``) and saved
by the same functions as ``…/telemetry-definitions`` (:mod:`mqtthub.telemetry.definitions`), so the console
refuses exactly what the API refuses, with the message next to the field it is about. A change applies from the
device's next message on. Members see the list; only administrators get the forms (and the routes refuse them
to anyone else, :mod:`mqtthub.auth.roles`).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import RedirectResponse, Response

from mqtthub.auth.devices import get_device
from mqtthub.console.fielderrors import FORM, FieldErrors, FormState
from mqtthub.console.routing import ConsoleRoute
from mqtthub.console.session import PREFIX
from mqtthub.console.templating import Frame, OrgFrame, render
from mqtthub.errors import ConflictError, ValidationFailedError
from mqtthub.models import Device, TelemetryDefinition
from mqtthub.telemetry import definitions
from mqtthub.telemetry.schemas import DefinitionCreate, DefinitionUpdate
from mqtthub.web.deps import SessionDep
from mqtthub.web.params import IntId

logger = logging.getLogger(__name__)

router = APIRouter(
    prefix=PREFIX + "/orgs/{org_id}/devices/{device_id}/definitions",
    route_class=ConsoleRoute,
    include_in_schema=False,
)

FIELDS = {"key": "key", "name": "name", "unit": "unit", "minThreshold": "min", "maxThreshold": "max"}
"""The API's field names and the form's."""

Text = Annotated[str, Form(max_length=200)]


def _field_of(location: tuple[int | str, ...]) -> str:
    """The form field of an error of the API's model; an error of the whole model is about the minimum."""
    name = str(location[0]) if location else "minThreshold"
    return FIELDS.get(name, FORM)


def _threshold(text: str) -> str | None:
    # An empty threshold field means no threshold; anything else is the model's to judge.
    return text.strip() or None


def _body(values: dict[str, str]) -> dict[str, Any]:
    """The API's request body from the form's values."""
    body: dict[str, Any] = {}
    for api, form in FIELDS.items():
        if form in values:
            body[api] = _threshold(values[form]) if form in ("min", "max") else values[form].strip()
    return body


async def _render(
    request: Request, template: str, frame: Frame, device: Device, state: FormState, **extra: Any
) -> Response:
    """The list page (``definitions.html``) or a definition's form (``definition.html``)."""
    context = {"frame": frame, "nav": "devices", "device": device} | state.context | extra
    return render(request, template, context, status_code=state.status_code)


async def _page(
    request: Request, frame: Frame, session: AsyncSession, device: Device, state: FormState | None = None
) -> Response:
    listed = await definitions.device_definitions(session, device.id)
    return await _render(request, "definitions.html", frame, device, state or FormState(), definitions=listed)


def _shown(definition: TelemetryDefinition) -> dict[str, str]:
    """A definition's values as its form shows them."""
    return {
        "name": definition.name,
        "unit": definition.unit,
        "min": "" if definition.min_threshold is None else f"{definition.min_threshold:g}",
        "max": "" if definition.max_threshold is None else f"{definition.max_threshold:g}",
    }


def _refused(errors: FieldErrors, kept: dict[str, str], what: str) -> FormState:
    """The form shown again with its errors (logged by field name, never with the values)."""
    logger.info("console: %s refused (%s)", what, errors.fields())
    return FormState(errors, kept, status_code=422)


@router.get("", summary="A device's telemetry definitions")
async def list_page(request: Request, device_id: str, frame: OrgFrame, session: SessionDep) -> Response:
    """The device's definitions with their thresholds (and, for administrators, the forms)."""
    return await _page(request, frame, session, await get_device(session, frame.org.id, device_id))


@router.post("", summary="Create a telemetry definition")
async def create(
    request: Request,
    device_id: str,
    frame: OrgFrame,
    session: SessionDep,
    key: Annotated[str, Form(max_length=200)] = "",
    name: Text = "",
    unit: Text = "",
    low: Annotated[str, Form(alias="min", max_length=50)] = "",
    high: Annotated[str, Form(alias="max", max_length=50)] = "",
) -> Response:
    """Add a definition; a refused form comes back with the message next to its field."""
    device = await get_device(session, frame.org.id, device_id)
    values = {"key": key, "name": name, "unit": unit, "min": low, "max": high}
    errors = FieldErrors()
    try:
        await definitions.create_definition(session, device, DefinitionCreate.model_validate(_body(values)))
    except ValidationError as exc:
        errors.add_validation(exc, _field_of)
    except ConflictError as exc:
        errors.add("key", exc.message)
    if errors:
        return await _page(request, frame, session, device, _refused(errors, values, "new telemetry definition"))
    return RedirectResponse(f"{frame.base}/devices/{device.id}/definitions", status_code=303)


@router.get("/{definition_id}", summary="Change a telemetry definition (form)")
async def edit_page(
    request: Request, device_id: str, definition_id: IntId, frame: OrgFrame, session: SessionDep
) -> Response:
    """The form that changes a definition's name, unit and thresholds."""
    device = await get_device(session, frame.org.id, device_id)
    definition = await definitions.get_definition(session, device.id, definition_id)
    state = FormState(kept=_shown(definition))
    return await _render(request, "definition.html", frame, device, state, definition=definition)


@router.post("/{definition_id}", summary="Change a telemetry definition")
async def update(
    request: Request,
    device_id: str,
    definition_id: IntId,
    frame: OrgFrame,
    session: SessionDep,
    name: Text = "",
    unit: Text = "",
    low: Annotated[str, Form(alias="min", max_length=50)] = "",
    high: Annotated[str, Form(alias="max", max_length=50)] = "",
) -> Response:
    """Change name, unit and thresholds (an empty threshold removes it), effective for the next message."""
    device = await get_device(session, frame.org.id, device_id)
    definition = await definitions.get_definition(session, device.id, definition_id)
    values = {"name": name, "unit": unit, "min": low, "max": high}
    errors = FieldErrors()
    try:
        changes = DefinitionUpdate.model_validate(_body(values)).model_dump(exclude_unset=True)
        await definitions.update_definition(session, definition, changes)
    except ValidationError as exc:
        errors.add_validation(exc, _field_of)
    except ValidationFailedError as exc:
        errors.add_refusal(exc, lambda field: FIELDS.get(field, FORM))
    if errors:
        state = _refused(errors, values, "telemetry definition change")
        await session.refresh(definition)  # forget what the refused change set on it
        return await _render(request, "definition.html", frame, device, state, definition=definition)
    return RedirectResponse(f"{frame.base}/devices/{device.id}/definitions", status_code=303)


@router.post("/{definition_id}/delete", summary="Delete a telemetry definition")
async def delete(device_id: str, definition_id: IntId, frame: OrgFrame, session: SessionDep) -> Response:
    """Remove the definition; its readings stay in history, and messages naming it are refused from now on."""
    device = await get_device(session, frame.org.id, device_id)
    await definitions.delete_definition(session, await definitions.get_definition(session, device.id, definition_id))
    return RedirectResponse(f"{frame.base}/devices/{device.id}/definitions", status_code=303)
