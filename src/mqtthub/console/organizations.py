"""Organizations, for platform administrators: every organization of the hub; create one, delete one.

Each action calls the same functions as ``/api/v1/organizations`` after the same role gate (``MANAGE_PLATFORM``);
a new organization is checked with the API's request model, and a refused form comes back with each problem under
its field. Deleting an organization deletes everything in it and disconnects its clients; one's own organization
cannot be deleted.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from mqtthub.auth.organizations import (
    OrganizationCreate,
    create_organization,
    delete_organization,
    get_organization,
    list_organizations,
)
from mqtthub.console.fielderrors import FieldErrors, FormState
from mqtthub.console.routing import ConsoleRoute
from mqtthub.console.session import PREFIX
from mqtthub.console.templating import OrgFrame, after_change, is_htmx, render
from mqtthub.errors import ConflictError, ValidationFailedError
from mqtthub.web.deps import SessionDep

router = APIRouter(prefix=PREFIX + "/orgs/{org_id}/organizations", route_class=ConsoleRoute, include_in_schema=False)


async def _page(request: Request, frame: OrgFrame, session: SessionDep, state: FormState | None = None) -> Response:
    state = state or FormState()
    context = {
        "frame": frame,
        "nav": "organizations",
        "organizations": await list_organizations(session),
        **state.context,
    }
    template = "partials/organizations.html" if is_htmx(request) else "organizations.html"
    return render(request, template, context, status_code=state.status_code)


async def _done(request: Request, frame: OrgFrame, session: SessionDep, message: str) -> Response:
    return await after_change(
        request, f"{frame.base}/organizations", lambda: _page(request, frame, session, FormState(message=message))
    )


@router.get("", summary="Organizations")
async def organizations_page(request: Request, frame: OrgFrame, session: SessionDep) -> Response:
    """Every organization of the hub."""
    return await _page(request, frame, session)


@router.post("", summary="Create an organization")
async def create(
    request: Request,
    frame: OrgFrame,
    session: SessionDep,
    name: Annotated[str, Form(max_length=1000)] = "",
    short_id: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Create an organization; a refused form comes back with its problems under the fields."""
    kept = {"name": name, "short_id": short_id}
    try:
        body = OrganizationCreate.model_validate({"name": name.strip(), "short_id": short_id.strip() or None})
        created = await create_organization(session, body.name, body.short_id)
    except ValidationError as exc:
        errors = FieldErrors()
        errors.add_validation(exc)
        return await _page(request, frame, session, FormState(errors, kept, status_code=422))
    except ValidationFailedError as exc:
        errors = FieldErrors()
        errors.add_refusal(exc, str)
        return await _page(request, frame, session, FormState(errors, kept, status_code=422))
    except ConflictError as exc:
        return await _page(request, frame, session, FormState(FieldErrors(short_id=exc.message), kept, status_code=409))
    return await _done(request, frame, session, f"Created {created.name} ({created.short_id}).")


@router.post("/{organization_id}/delete", summary="Delete an organization")
async def delete(request: Request, organization_id: str, frame: OrgFrame, session: SessionDep) -> Response:
    """Delete an organization with everything in it (not one's own)."""
    name = (await get_organization(session, organization_id)).name
    await delete_organization(session, frame.console.user, organization_id)
    if organization_id == frame.org.id:  # the page's own organization is gone: go to one's own
        if is_htmx(request):
            return Response(status_code=204, headers={"HX-Redirect": f"{PREFIX}/orgs"})
        return RedirectResponse(f"{PREFIX}/orgs", status_code=303)
    return await _done(request, frame, session, f"Deleted {name}.")
