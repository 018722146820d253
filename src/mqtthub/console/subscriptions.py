"""A product's event subscriptions in the console: create one, change or delete it, and edit its actions.

The forms build the API's ``SubscriptionCreate`` and ``SubscriptionUpdate`` and call the same functions as
``POST``/``PUT``/``DELETE …/mqtt-config/subscriptions``, after the same checks of the actions
(:meth:`~mqtthub.integrations.service.IntegrationService.check_actions`); every error is shown next to the
field it is about. Actions are edited one at a time, the subscription's whole list validated as the API
validates it.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from mqtthub.console import action_form
from mqtthub.console.fielderrors import FieldErrors, FormState
from mqtthub.console.products import product_page
from mqtthub.console.routing import ConsoleRoute
from mqtthub.console.session import PREFIX
from mqtthub.console.templating import Frame, OrgFrame, render
from mqtthub.errors import NotFoundError, ValidationFailedError
from mqtthub.integrations import products, repository
from mqtthub.integrations.endpoints import IntegrationsDep
from mqtthub.integrations.schemas import SubscriptionCreate, SubscriptionUpdate
from mqtthub.models import EventSubscription, Product
from mqtthub.web.deps import SessionDep

FAILURES_SHOWN = 50
"""Newest failures of the subscription on its page."""

logger = logging.getLogger(__name__)

router = APIRouter(
    prefix=PREFIX + "/orgs/{org_id}/products/{product_id}/subscriptions",
    route_class=ConsoleRoute,
    include_in_schema=False,
)

ActionIndex = Annotated[int, Path(ge=0, le=1000)]


def _variables(text: str, errors: FieldErrors) -> dict[str, str]:
    """``name=value`` lines (blank lines ignored)."""
    variables: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, equals, value = line.partition("=")
        if not equals or not name.strip():
            errors.add("variables", f"“{line.strip()}” is not name=value")
            continue
        variables[name.strip()] = value.strip()
    return variables


def _settings(form: FormData, errors: FieldErrors) -> dict[str, Any]:
    """The subscription's own fields (enabled, description, variables) as the API's body has them."""
    description = str(form.get("description") or "").strip()
    return {
        "enabled": form.get("enabled") is not None,
        "description": description or None,
        "variables": _variables(str(form.get("variables") or ""), errors),
    }


def _typed(form: FormData) -> dict[str, str]:
    return {name: value for name, value in form.items() if isinstance(value, str)}


async def _subscription(
    session: AsyncSession, frame: Frame, product_id: str, subscription_id: str
) -> tuple[Product, EventSubscription]:
    product = await products.product_of(session, frame.org.id, product_id)
    return product, await repository.subscription_of(session, product.id, subscription_id)


async def _page(
    request: Request,
    frame: Frame,
    session: AsyncSession,
    product: Product,
    row: EventSubscription,
    *,
    editing: int | None = None,
    action: FormState | None = None,
    settings: FormState | None = None,
    status_code: int = 200,
) -> Response:
    if editing is not None and editing >= len(row.actions):
        raise NotFoundError("Action not found")
    if action is None:
        kept = action_form.form_values(row.actions[editing]) if editing is not None else {"type": ""}
        action = FormState(kept=kept)
    context = {
        "frame": frame,
        "nav": "integrations",
        "product": product,
        "subscription": row,
        "actions": [(index, item, action_form.summary(item)) for index, item in enumerate(row.actions)],
        "editing": editing,
        "action": action,
        "action_types": action_form.TYPES,
        "shown_for": action_form.SHOWN_FOR,
        "settings": settings or FormState(kept=_stored_settings(row)),
        "failures": await repository.failures_of(session, product.id, limit=FAILURES_SHOWN, subscription_id=row.id),
        "event_names": {},
    }
    return render(request, "subscription.html", context, status_code=status_code)


def _stored_settings(row: EventSubscription) -> dict[str, str]:
    return {
        "enabled": "true" if row.enabled else "",
        "description": row.description or "",
        "variables": "\n".join(f"{name}={value}" for name, value in row.variables.items()),
    }


@router.post("", summary="Create an event subscription")
async def create(
    request: Request, product_id: str, frame: OrgFrame, session: SessionDep, integrations: IntegrationsDep
) -> Response:
    """A new subscription (its actions are added on its page), or the product's page with the form's errors."""
    product = await products.product_of(session, frame.org.id, product_id)
    form = await request.form()
    errors = FieldErrors()
    body = {"name": str(form.get("name") or "").strip()} | _settings(form, errors)
    if not errors:
        try:
            created = SubscriptionCreate.model_validate(body)
            await integrations.check_actions(created.actions)
            topics = await repository.topics_of(session, product.id)
            row = await repository.create_subscription(session, product, created, topics)
        except ValidationError as exc:
            errors.add_validation(exc)
        except ValidationFailedError as exc:
            errors.add_refusal(exc, str)
    if errors:
        logger.info("console %s: refused fields %s", request.url.path, errors.fields())
        state = FormState(errors=errors, kept=_typed(form))
        return await product_page(request, frame, session, integrations, product, subscription=state, status_code=422)
    return RedirectResponse(f"{frame.base}/products/{product.id}/subscriptions/{row.id}", status_code=303)


@router.get("/{subscription_id}", summary="An event subscription")
async def page(
    request: Request,
    product_id: str,
    subscription_id: str,
    frame: OrgFrame,
    session: SessionDep,
    edit: Annotated[int | None, Query(ge=0, le=1000)] = None,
) -> Response:
    """The subscription: its settings, statistics, actions (``?edit=i`` opens action ``i`` in the form) and failures."""
    product, row = await _subscription(session, frame, product_id, subscription_id)
    return await _page(request, frame, session, product, row, editing=edit)


@router.post("/{subscription_id}", summary="Change an event subscription")
async def update(
    request: Request, product_id: str, subscription_id: str, frame: OrgFrame, session: SessionDep
) -> Response:
    """Enable or disable it, describe it, or change its topic variables."""
    product, row = await _subscription(session, frame, product_id, subscription_id)
    form = await request.form()
    errors = FieldErrors()
    body = _settings(form, errors)
    if not errors:
        try:
            changes = SubscriptionUpdate.model_validate(body)
            await repository.update_subscription(session, row, changes, await repository.topics_of(session, product.id))
        except ValidationError as exc:
            errors.add_validation(exc)
    if errors:
        logger.info("console %s: refused fields %s", request.url.path, errors.fields())
        state = FormState(errors=errors, kept=_typed(form))
        return await _page(request, frame, session, product, row, settings=state, status_code=422)
    return RedirectResponse(f"{frame.base}/products/{product.id}/subscriptions/{row.id}", status_code=303)


@router.post("/{subscription_id}/delete", summary="Delete an event subscription")
async def delete(product_id: str, subscription_id: str, frame: OrgFrame, session: SessionDep) -> Response:
    """Remove the subscription with its statistics and failure log."""
    product, row = await _subscription(session, frame, product_id, subscription_id)
    await repository.delete_subscription(session, row)
    return RedirectResponse(f"{frame.base}/products/{product.id}#subscriptions", status_code=303)


async def _save_action(
    request: Request,
    frame: Frame,
    session: AsyncSession,
    integrations: IntegrationsDep,
    product_id: str,
    subscription_id: str,
    index: int | None,
) -> Response:
    """Put the form's action at ``index`` (None: after the others) and save the list, or show the errors."""
    product, row = await _subscription(session, frame, product_id, subscription_id)
    if index is not None and index >= len(row.actions):
        raise NotFoundError("Action not found")
    form = await request.form()
    errors = FieldErrors()
    action = action_form.action_from_form(form, errors)
    position = len(row.actions) if index is None else index
    if not errors:
        actions = [*row.actions[:position], action, *row.actions[position + 1 :]]
        kind = str(form.get("type"))
        try:
            changes = SubscriptionUpdate.model_validate({"actions": actions})
            await integrations.check_actions(changes.actions or [])
            await repository.update_subscription(session, row, changes, await repository.topics_of(session, product.id))
        except ValidationError as exc:
            errors.add_validation(exc, action_form.field_of(kind, position))
        except ValidationFailedError as exc:
            errors.add_refusal(exc, action_form.refused_field)
    if errors:
        logger.info("console %s: refused fields %s", request.url.path, errors.fields())
        state = FormState(errors=errors, kept=_typed(form))
        return await _page(request, frame, session, product, row, editing=index, action=state, status_code=422)
    return RedirectResponse(f"{frame.base}/products/{product.id}/subscriptions/{row.id}#actions", status_code=303)


@router.post("/{subscription_id}/actions", summary="Add an action")
async def add_action(
    request: Request,
    product_id: str,
    subscription_id: str,
    frame: OrgFrame,
    session: SessionDep,
    integrations: IntegrationsDep,
) -> Response:
    """Add the form's action after the subscription's other actions."""
    return await _save_action(request, frame, session, integrations, product_id, subscription_id, None)


@router.post("/{subscription_id}/actions/{action_index}", summary="Change an action")
async def replace_action(
    request: Request,
    product_id: str,
    subscription_id: str,
    action_index: ActionIndex,
    frame: OrgFrame,
    session: SessionDep,
    integrations: IntegrationsDep,
) -> Response:
    """Replace action ``action_index`` with the form's."""
    return await _save_action(request, frame, session, integrations, product_id, subscription_id, action_index)


async def _reorder(
    session: AsyncSession, frame: Frame, product_id: str, subscription_id: str, index: int, moved: int | None
) -> Response:
    """Take action ``index`` out of the list and put it back at ``moved`` (None: drop it); save the list."""
    product, row = await _subscription(session, frame, product_id, subscription_id)
    if index >= len(row.actions):
        raise NotFoundError("Action not found")
    actions = [item for position, item in enumerate(row.actions) if position != index]
    if moved is not None:
        actions.insert(moved, row.actions[index])
    changes = SubscriptionUpdate.model_validate({"actions": actions})
    await repository.update_subscription(session, row, changes, await repository.topics_of(session, product.id))
    return RedirectResponse(f"{frame.base}/products/{product.id}/subscriptions/{row.id}#actions", status_code=303)


@router.post("/{subscription_id}/actions/{action_index}/delete", summary="Remove an action")
async def remove_action(
    product_id: str, subscription_id: str, action_index: ActionIndex, frame: OrgFrame, session: SessionDep
) -> Response:
    """Remove action ``action_index``; the others keep their order."""
    return await _reorder(session, frame, product_id, subscription_id, action_index, None)


@router.post("/{subscription_id}/actions/{action_index}/up", summary="Run an action earlier")
async def move_action_up(
    product_id: str, subscription_id: str, action_index: ActionIndex, frame: OrgFrame, session: SessionDep
) -> Response:
    """Swap action ``action_index`` with the one before it (actions run in order)."""
    return await _reorder(session, frame, product_id, subscription_id, action_index, max(0, action_index - 1))
