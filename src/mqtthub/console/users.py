"""The organization's users: the members with their roles; administrators add one, change a role, remove one.

Each action calls the same functions as ``/api/v1/organizations/{id}/users`` after the same role gate, and a new
user is checked with the API's own request model, so the console takes exactly what the API takes. A refused
form comes back with each problem under its field. A new user signs in with the e-mail and initial password
given here (the hub sends no e-mail).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from pydantic import ValidationError
from starlette.responses import Response

from mqtthub.auth.deps import PasswordsDep
from mqtthub.auth.users import UserCreate, add_user, change_role, list_users, member_to_change, remove_user
from mqtthub.console.fielderrors import FieldErrors, FormState
from mqtthub.console.routing import ConsoleRoute
from mqtthub.console.session import PREFIX
from mqtthub.console.templating import OrgFrame, after_change, is_htmx, render
from mqtthub.errors import ConflictError
from mqtthub.models import UserRole
from mqtthub.web.deps import SessionDep

ROLE_NAMES = {
    UserRole.ORG_MEMBER: "Member (reads)",
    UserRole.ORG_ADMIN: "Administrator",
    UserRole.PLATFORM_ADMIN: "Platform administrator",
}
WORDING = {
    "email": "an e-mail address is needed, like name@example.com",
    "password": "the password needs at least 8 characters",
}

router = APIRouter(prefix=PREFIX + "/orgs/{org_id}/users", route_class=ConsoleRoute, include_in_schema=False)


async def _page(request: Request, frame: OrgFrame, session: SessionDep, state: FormState | None = None) -> Response:
    state = state or FormState()
    grantable = [
        role for role in ROLE_NAMES if role is not UserRole.PLATFORM_ADMIN or frame.console.user.is_platform_admin
    ]
    context = {
        "frame": frame,
        "nav": "users",
        "users": await list_users(session, frame.org.id),
        "role_names": ROLE_NAMES,
        "grantable": grantable,
        **state.context,
    }
    template = "partials/users.html" if is_htmx(request) else "users.html"
    return render(request, template, context, status_code=state.status_code)


async def _done(request: Request, frame: OrgFrame, session: SessionDep, message: str) -> Response:
    return await after_change(
        request, f"{frame.base}/users", lambda: _page(request, frame, session, FormState(message=message))
    )


@router.get("", summary="Users")
async def users_page(request: Request, frame: OrgFrame, session: SessionDep) -> Response:
    """The organization's users and their roles."""
    return await _page(request, frame, session)


@router.post("", summary="Add a user")
async def add(
    request: Request,
    frame: OrgFrame,
    session: SessionDep,
    passwords: PasswordsDep,
    email: Annotated[str, Form(max_length=1000)] = "",
    password: Annotated[str, Form(max_length=2000)] = "",
    role: Annotated[str, Form(max_length=50)] = UserRole.ORG_MEMBER.value,
) -> Response:
    """Add a user; a refused form comes back with its problems under the fields (the password never)."""
    kept = {"email": email, "role": role}
    try:
        body = UserCreate.model_validate({"email": email, "password": password, "role": role})
        created = await add_user(session, frame.console.user, frame.org.id, body, passwords)
    except ValidationError as exc:
        errors = FieldErrors()
        errors.add_validation(exc)
        errors.update((name, wording) for name, wording in WORDING.items() if name in errors)
        return await _page(request, frame, session, FormState(errors, kept, status_code=422))
    except ConflictError as exc:
        return await _page(request, frame, session, FormState(FieldErrors(email=exc.message), kept, status_code=409))
    return await _done(request, frame, session, f"Added {created.email}: they sign in with this password.")


@router.post("/{user_id}/role", summary="Change a user's role")
async def set_role(
    request: Request, user_id: str, frame: OrgFrame, session: SessionDep, role: Annotated[UserRole, Form()]
) -> Response:
    """Give a user another role (not oneself)."""
    member = await member_to_change(session, frame.console.user, frame.org.id, user_id)
    change_role(frame.console.user, member, role)
    await session.flush()
    return await _done(request, frame, session, f"{member.email} is now {ROLE_NAMES[role].lower()}.")


@router.post("/{user_id}/remove", summary="Remove a user")
async def remove(request: Request, user_id: str, frame: OrgFrame, session: SessionDep) -> Response:
    """Remove a user with its certificates (not oneself); its sessions and connections end."""
    member = await member_to_change(session, frame.console.user, frame.org.id, user_id)
    email = member.email
    await remove_user(session, member)
    return await _done(request, frame, session, f"Removed {email}.")
