"""Users of an organization, created by its org admins (or a platform admin).

Endpoints (session token):

- ``POST  /api/v1/organizations/{org_id}/users`` (org admin) — ``{email, password, role}``
- ``GET   /api/v1/organizations/{org_id}/users`` (members)
- ``PATCH /api/v1/organizations/{org_id}/users/{user_id}`` (org admin) — ``{role?, is_active?}``
- ``DELETE /api/v1/organizations/{org_id}/users/{user_id}`` (org admin) — with its certificates

Only a platform admin creates, changes or removes a platform admin; nobody changes or removes themselves.
Deactivating or removing a user ends its sessions at their next request and disconnects its MQTT
connections (logins and certificates).
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mqtthub.auth.deps import AuthenticatedUser, CurrentUser, PasswordsDep, require_org_access
from mqtthub.auth.live import end_access_after_commit
from mqtthub.auth.organizations import get_organization
from mqtthub.auth.passwords import PasswordWorkers
from mqtthub.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationFailedError
from mqtthub.models import ClientCertificate, User, UserRole
from mqtthub.web.deps import SessionDep
from mqtthub.web.openapi import errors


class UserCreate(BaseModel):
    """A new user of the organization."""

    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    password: str = Field(min_length=8, max_length=1024)
    role: UserRole = UserRole.ORG_MEMBER


class UserUpdate(BaseModel):
    """Changes to a user; omitted fields stay as they are."""

    role: UserRole | None = None
    is_active: bool | None = None


class UserOut(BaseModel):
    """A user as the API shows it (never the password hash)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    email: str
    role: UserRole
    organization_id: str | None
    is_active: bool
    created_at: datetime


class UserList(BaseModel):
    """Users of an organization."""

    users: list[UserOut]
    count: int


async def create_user(
    session: AsyncSession,
    organization_id: str,
    email: str,
    password: str,
    role: UserRole = UserRole.ORG_MEMBER,
    *,
    passwords: PasswordWorkers,
) -> User:
    """Add a user to an organization; the password is hashed with argon2id on ``passwords``' threads.

    Raises:
        UnavailableError: the password workers are busy.
        NotFoundError: the organization does not exist.
        ConflictError: the e-mail is taken.
    """
    await get_organization(session, organization_id)
    email = email.strip().lower()
    if await session.scalar(select(User.id).where(User.email == email)):
        raise ConflictError("a user with this e-mail already exists")
    user = User(
        email=email,
        password_hash=await passwords.hash(password),
        role=role,
        organization_id=organization_id,
    )
    session.add(user)
    await session.flush()
    return user


async def add_user(
    session: AsyncSession, actor: AuthenticatedUser, organization_id: str, body: UserCreate, passwords: PasswordWorkers
) -> User:
    """Add the user ``body`` describes to the organization, on behalf of ``actor``.

    Raises:
        PermissionDeniedError: the role is ``platform_admin`` and the actor is no platform administrator.
        UnavailableError: the password workers are busy.
        NotFoundError: the organization does not exist.
        ConflictError: the e-mail is taken.
    """
    _check_grant(actor, body.role)
    return await create_user(session, organization_id, body.email, body.password, body.role, passwords=passwords)


async def list_users(session: AsyncSession, organization_id: str) -> list[User]:
    """The organization's users, oldest first.

    Raises:
        NotFoundError: the organization does not exist.
    """
    await get_organization(session, organization_id)
    query = select(User).where(User.organization_id == organization_id).order_by(User.created_at, User.email)
    return list((await session.scalars(query)).all())


async def member_to_change(session: AsyncSession, actor: AuthenticatedUser, organization_id: str, user_id: str) -> User:
    """A user of the organization that ``actor`` may change or remove.

    Raises:
        NotFoundError: the organization has no such user.
        ValidationFailedError: it is the actor.
        PermissionDeniedError: it is a platform administrator and the actor is not.
    """
    member = await session.get(User, user_id)
    if member is None or member.organization_id != organization_id:
        raise NotFoundError("user not found")
    if member.id == actor.id:
        raise ValidationFailedError("you cannot change or remove yourself")
    if member.role is UserRole.PLATFORM_ADMIN and not actor.is_platform_admin:
        raise PermissionDeniedError("only a platform administrator changes a platform administrator")
    return member


def change_role(actor: AuthenticatedUser, member: User, role: UserRole) -> None:
    """Give ``member`` a new role (only a platform administrator grants ``platform_admin``)."""
    _check_grant(actor, role)
    member.role = role


async def remove_user(session: AsyncSession, member: User) -> None:
    """Delete a user with its client certificates; its sessions and MQTT connections end once committed."""
    serials = await session.scalars(select(ClientCertificate.serial).where(ClientCertificate.user_id == member.id))
    principals = [f"user:{member.id}", *(f"cert:{serial}" for serial in serials)]
    await session.delete(member)
    await session.flush()
    end_access_after_commit(session, principals)


async def set_user_active(session: AsyncSession, user: User, active: bool) -> None:
    """Activate or deactivate a user; deactivating ends its MQTT sessions (certificates, logins) once committed."""
    if user.is_active == active:
        return
    user.is_active = active
    await session.flush()
    if not active:
        serials = await session.scalars(select(ClientCertificate.serial).where(ClientCertificate.user_id == user.id))
        end_access_after_commit(session, [f"user:{user.id}", *(f"cert:{serial}" for serial in serials)])


def _check_grant(actor: AuthenticatedUser, role: UserRole) -> None:
    if role is UserRole.PLATFORM_ADMIN and not actor.is_platform_admin:
        raise PermissionDeniedError("only a platform administrator grants the platform_admin role")


router = APIRouter(prefix="/api/v1/organizations/{org_id}/users", tags=["users"])


@router.post("", status_code=201, summary="Create a user", responses=errors(409, 503))
async def create(
    org_id: str, body: UserCreate, user: CurrentUser, session: SessionDep, passwords: PasswordsDep
) -> UserOut:
    """Create a user in the organization (org admins)."""
    require_org_access(user, org_id, admin=True)
    return UserOut.model_validate(await add_user(session, user, org_id, body, passwords))


@router.get("", summary="List users")
async def list_all(org_id: str, user: CurrentUser, session: SessionDep) -> UserList:
    """The organization's users."""
    require_org_access(user, org_id)
    users = [UserOut.model_validate(member) for member in await list_users(session, org_id)]
    return UserList(users=users, count=len(users))


@router.patch("/{user_id}", summary="Change a user's role or activity")
async def update(org_id: str, user_id: str, body: UserUpdate, user: CurrentUser, session: SessionDep) -> UserOut:
    """Change a user's role, or (de)activate it (org admins; not yourself)."""
    require_org_access(user, org_id, admin=True)
    member = await member_to_change(session, user, org_id, user_id)
    if body.role is not None:
        change_role(user, member, body.role)
    if body.is_active is not None:
        await set_user_active(session, member, body.is_active)
    await session.flush()
    return UserOut.model_validate(member)


@router.delete("/{user_id}", status_code=204, summary="Remove a user", responses=errors(404))
async def delete(org_id: str, user_id: str, user: CurrentUser, session: SessionDep) -> Response:
    """Remove a user from the organization with its client certificates (org admins; not yourself)."""
    require_org_access(user, org_id, admin=True)
    await remove_user(session, await member_to_change(session, user, org_id, user_id))
    return Response(status_code=204)
