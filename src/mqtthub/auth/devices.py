"""Devices of an organization, and the tokens they connect with.

Endpoints (session token; reading needs membership, changing needs an org admin):

- ``POST   /api/v1/organizations/{org_id}/devices`` — ``{name, metadata?, enabled?}``
- ``GET    /api/v1/organizations/{org_id}/devices``
- ``GET    /api/v1/organizations/{org_id}/devices/{device_id}``
- ``PATCH  /api/v1/organizations/{org_id}/devices/{device_id}`` — ``{name?, metadata?, enabled?}``
- ``DELETE /api/v1/organizations/{org_id}/devices/{device_id}``

Disabling or deleting a device disconnects it (and its certificates' connections) at once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from mqtthub.auth.deps import CurrentUser, require_org_access
from mqtthub.auth.live import DeviceChanged, end_access_after_commit
from mqtthub.auth.organizations import get_organization
from mqtthub.db.changes import record
from mqtthub.errors import NotFoundError
from mqtthub.models import ClientCertificate, Device
from mqtthub.web.deps import SessionDep


class DeviceCreate(BaseModel):
    """A new device."""

    name: str = Field(min_length=1, max_length=200)
    metadata: dict[str, Any] = Field(default_factory=dict, description="Free-form JSON kept with the device.")
    enabled: bool = True


class DeviceUpdate(BaseModel):
    """Changes to a device; omitted fields stay as they are."""

    name: str | None = Field(None, min_length=1, max_length=200)
    metadata: dict[str, Any] | None = None
    enabled: bool | None = None


class DeviceOut(BaseModel):
    """A device as the API shows it; ``id`` is its MQTT user name."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    organization_id: str
    name: str
    metadata: dict[str, Any] = Field(validation_alias="device_metadata")
    enabled: bool
    created_at: datetime
    updated_at: datetime


class DeviceList(BaseModel):
    """Devices of an organization."""

    devices: list[DeviceOut]
    count: int


def device_principals(device_id: str, certificate_serials: list[str]) -> list[str]:
    """Broker principal ids under which a device can be connected."""
    return [f"device:{device_id}", *(f"cert:{serial}" for serial in certificate_serials)]


async def create_device(
    session: AsyncSession,
    organization_id: str,
    name: str,
    metadata: dict[str, Any] | None = None,
    *,
    enabled: bool = True,
) -> Device:
    """Add a device to an organization.

    Raises:
        NotFoundError: the organization does not exist.
    """
    await get_organization(session, organization_id)
    device = Device(organization_id=organization_id, name=name, device_metadata=metadata or {}, enabled=enabled)
    session.add(device)
    await session.flush()
    return device


async def get_device(session: AsyncSession, organization_id: str, device_id: str) -> Device:
    """A device of the organization.

    Raises:
        NotFoundError: no such device in this organization.
    """
    device = await session.get(Device, device_id)
    if device is None or device.organization_id != organization_id:
        raise NotFoundError("device not found")
    return device


async def list_devices(session: AsyncSession, organization_id: str) -> list[Device]:
    """The organization's devices, oldest first."""
    query = select(Device).where(Device.organization_id == organization_id).order_by(Device.created_at, Device.id)
    return list((await session.scalars(query)).all())


async def search_devices(
    session: AsyncSession, organization_id: str, search: str = "", *, offset: int, limit: int
) -> tuple[list[Device], int]:
    """One page of the organization's devices, oldest first, and how many match in all.

    ``search`` matches a device whose id is exactly it, or whose name contains it (any case). The page is
    read with an index on the organization, so it stays cheap with tens of thousands of devices.
    """
    query = select(Device).where(Device.organization_id == organization_id)
    if search:
        pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(or_(Device.id == search, Device.name.ilike(pattern, escape="\\")))
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    page = await session.scalars(query.order_by(Device.created_at, Device.id).offset(offset).limit(limit))
    return list(page.all()), total or 0


async def set_device_enabled(session: AsyncSession, device: Device, enabled: bool) -> None:
    """Enable or disable a device; disabling disconnects it once committed."""
    if device.enabled == enabled:
        return
    device.enabled = enabled
    await session.flush()
    record(session, DeviceChanged(device.id))
    if not enabled:
        end_access_after_commit(session, device_principals(device.id, await _serials(session, device.id)))


async def delete_device(session: AsyncSession, device: Device) -> None:
    """Delete a device with its tokens and certificates; its connections end once committed."""
    principals = device_principals(device.id, await _serials(session, device.id))
    await session.delete(device)
    await session.flush()
    record(session, DeviceChanged(device.id))
    end_access_after_commit(session, principals)


async def _serials(session: AsyncSession, device_id: str) -> list[str]:
    query = select(ClientCertificate.serial).where(ClientCertificate.device_id == device_id)
    return list((await session.scalars(query)).all())


router = APIRouter(prefix="/api/v1/organizations/{org_id}/devices", tags=["devices"])


@router.post("", status_code=201, summary="Register a device")
async def create(org_id: str, body: DeviceCreate, user: CurrentUser, session: SessionDep) -> DeviceOut:
    """Register a device in the organization (org admins). Give it a token next, or a certificate."""
    require_org_access(user, org_id, admin=True)
    device = await create_device(session, org_id, body.name, body.metadata, enabled=body.enabled)
    return DeviceOut.model_validate(device)


@router.get("", summary="List devices")
async def list_all(org_id: str, user: CurrentUser, session: SessionDep) -> DeviceList:
    """Every device of the organization."""
    require_org_access(user, org_id)
    await get_organization(session, org_id)
    devices = [DeviceOut.model_validate(device) for device in await list_devices(session, org_id)]
    return DeviceList(devices=devices, count=len(devices))


@router.get("/{device_id}", summary="Get a device")
async def get(org_id: str, device_id: str, user: CurrentUser, session: SessionDep) -> DeviceOut:
    """One device of the organization."""
    require_org_access(user, org_id)
    return DeviceOut.model_validate(await get_device(session, org_id, device_id))


@router.patch("/{device_id}", summary="Change a device")
async def update(org_id: str, device_id: str, body: DeviceUpdate, user: CurrentUser, session: SessionDep) -> DeviceOut:
    """Rename a device, replace its metadata, or enable/disable it (disabling disconnects it)."""
    require_org_access(user, org_id, admin=True)
    device = await get_device(session, org_id, device_id)
    if body.name is not None:
        device.name = body.name
    if body.metadata is not None:
        device.device_metadata = body.metadata
    if body.enabled is not None:
        await set_device_enabled(session, device, body.enabled)
    await session.flush()
    await session.refresh(device)
    return DeviceOut.model_validate(device)


@router.delete("/{device_id}", status_code=204, summary="Delete a device")
async def delete(org_id: str, device_id: str, user: CurrentUser, session: SessionDep) -> Response:
    """Delete a device with its tokens and certificates; it is disconnected at once."""
    require_org_access(user, org_id, admin=True)
    await delete_device(session, await get_device(session, org_id, device_id))
    return Response(status_code=204)
