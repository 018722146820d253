"""Organizations: created and managed by platform admins; other users see their own.

Endpoints (all need a session token):

- ``POST /api/v1/organizations`` (platform admin) — ``{name, short_id?}``
- ``GET /api/v1/organizations`` — every organization for a platform admin, else the caller's own
- ``GET /api/v1/organizations/{org_id}``
- ``PATCH /api/v1/organizations/{org_id}`` (platform admin) — ``{name}``
- ``DELETE /api/v1/organizations/{org_id}`` (platform admin) — with its devices, tokens and users
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mqtthub.auth.bootstrap import make_short_id
from mqtthub.auth.deps import AuthenticatedUser, CurrentUser, require_org_access
from mqtthub.auth.live import DeviceChanged, OrganizationDeleted, end_access_after_commit
from mqtthub.db.changes import record
from mqtthub.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationFailedError
from mqtthub.models import ClientCertificate, Device, MqttApiToken, Organization, User
from mqtthub.web.deps import SessionDep
from mqtthub.web.openapi import errors

SHORT_ID = re.compile(r"^[a-z0-9]{6,10}$")


@dataclass(frozen=True, slots=True)
class OrganizationCreated:
    """A new organization, committed: an external broker gets its tenancy (a RabbitMQ vhost) for it."""

    short_id: str


class OrganizationCreate(BaseModel):
    """A new organization; ``short_id`` is derived from the name when omitted."""

    name: str = Field(min_length=1, max_length=200)
    short_id: str | None = Field(None, description="6-10 lowercase letters and digits; unique.")


class OrganizationUpdate(BaseModel):
    """A new name for an organization (its ``short_id`` never changes: tokens and topics carry it)."""

    name: str = Field(min_length=1, max_length=200)


class OrganizationOut(BaseModel):
    """An organization as the API shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    short_id: str
    created_at: datetime


class OrganizationList(BaseModel):
    """Organizations visible to the caller."""

    organizations: list[OrganizationOut]
    count: int


async def create_organization(session: AsyncSession, name: str, short_id: str | None = None) -> Organization:
    """Add an organization.

    Raises:
        ValidationFailedError: ``short_id`` is not 6-10 lowercase letters and digits.
        ConflictError: ``short_id`` is taken.
    """
    if short_id is not None:
        if not SHORT_ID.match(short_id):
            raise ValidationFailedError("short_id must be 6-10 lowercase letters and digits", field="short_id")
        if await session.scalar(select(Organization.id).where(Organization.short_id == short_id)):
            raise ConflictError(f"the short id {short_id!r} is taken")
    else:
        short_id = make_short_id(name)
        while await session.scalar(select(Organization.id).where(Organization.short_id == short_id)):
            short_id = make_short_id(name)
    organization = Organization(name=name, short_id=short_id)
    session.add(organization)
    await session.flush()
    record(session, OrganizationCreated(short_id))
    return organization


async def get_organization(session: AsyncSession, organization_id: str) -> Organization:
    """The organization with this id.

    Raises:
        NotFoundError: there is none.
    """
    organization = await session.get(Organization, organization_id)
    if organization is None:
        raise NotFoundError("organization not found")
    return organization


async def list_organizations(session: AsyncSession) -> list[Organization]:
    """Every organization, oldest first."""
    return list((await session.scalars(select(Organization).order_by(Organization.created_at))).all())


async def visible_organization(session: AsyncSession, user: AuthenticatedUser, organization_id: str) -> Organization:
    """The organization, if the user may see it (a 404 for another organization would leak its existence,
    so a 403 is raised before looking it up).

    Raises:
        PermissionDeniedError: it is not the user's organization.
        NotFoundError: there is no such organization.
    """
    require_org_access(user, organization_id)
    return await get_organization(session, organization_id)


async def organization_principals(session: AsyncSession, organization_id: str) -> list[str]:
    """Broker principal ids of every device, API token, certificate and user of the organization."""
    devices = await session.scalars(select(Device.id).where(Device.organization_id == organization_id))
    users = await session.scalars(select(User.id).where(User.organization_id == organization_id))
    tokens = await session.scalars(select(MqttApiToken.id).where(MqttApiToken.organization_id == organization_id))
    serials = await session.scalars(
        select(ClientCertificate.serial).where(ClientCertificate.organization_id == organization_id)
    )
    return [
        *(f"device:{device_id}" for device_id in devices),
        *(f"token:{token_id}" for token_id in tokens),
        *(f"cert:{serial}" for serial in serials),
        *(f"user:{user_id}" for user_id in users),
    ]


async def delete_organization(session: AsyncSession, actor: AuthenticatedUser, organization_id: str) -> None:
    """Delete an organization with everything in it; its clients are disconnected once committed.

    Raises:
        ConflictError: it is the actor's own organization (an administrator cannot lock themselves out).
        NotFoundError: there is no such organization.
    """
    if organization_id == actor.organization_id:
        raise ConflictError("you cannot delete your own organization")
    organization = await get_organization(session, organization_id)
    principals = await organization_principals(session, organization_id)
    await session.delete(organization)
    await session.flush()
    for principal in principals:
        if principal.startswith("device:"):
            record(session, DeviceChanged(principal.removeprefix("device:")))
    end_access_after_commit(session, principals)
    record(session, OrganizationDeleted(organization_id))


def _require_platform_admin(user: AuthenticatedUser) -> None:
    if not user.is_platform_admin:
        raise PermissionDeniedError("only a platform administrator manages organizations")


router = APIRouter(prefix="/api/v1/organizations", tags=["organizations"])


@router.post("", status_code=201, summary="Create an organization", responses=errors(409))
async def create(body: OrganizationCreate, user: CurrentUser, session: SessionDep) -> OrganizationOut:
    """Create an organization (platform administrators only)."""
    _require_platform_admin(user)
    return OrganizationOut.model_validate(await create_organization(session, body.name, body.short_id))


@router.get("", summary="List organizations")
async def list_visible(user: CurrentUser, session: SessionDep) -> OrganizationList:
    """Every organization for a platform administrator; the caller's own for everyone else."""
    if user.is_platform_admin:
        organizations = await list_organizations(session)
    elif user.organization_id is None:
        organizations = []
    else:
        organizations = [await get_organization(session, user.organization_id)]
    items = [OrganizationOut.model_validate(organization) for organization in organizations]
    return OrganizationList(organizations=items, count=len(items))


@router.get("/{org_id}", summary="Get an organization")
async def get(org_id: str, user: CurrentUser, session: SessionDep) -> OrganizationOut:
    """One organization the caller belongs to (any, for a platform administrator)."""
    return OrganizationOut.model_validate(await visible_organization(session, user, org_id))


@router.patch("/{org_id}", summary="Rename an organization")
async def update(org_id: str, body: OrganizationUpdate, user: CurrentUser, session: SessionDep) -> OrganizationOut:
    """Rename an organization (platform administrators only)."""
    _require_platform_admin(user)
    organization = await get_organization(session, org_id)
    organization.name = body.name
    await session.flush()
    return OrganizationOut.model_validate(organization)


@router.delete("/{org_id}", status_code=204, summary="Delete an organization", responses=errors(409))
async def delete(org_id: str, user: CurrentUser, session: SessionDep, request: Request) -> Response:
    """Delete an organization with everything in it (platform administrators only); its clients are disconnected.

    The caller's own organization cannot be deleted, so an administrator cannot lock
    themselves out.
    """
    _require_platform_admin(user)
    await delete_organization(session, user, org_id)
    return Response(status_code=204)
