"""Device tokens: a device's MQTT password, shown once, stored as a hash, several at a time.

Endpoints (org admins):

- ``POST   /api/v1/organizations/{org_id}/devices/{device_id}/tokens`` — ``{name?, expires_in_days?}``
  → the token, the only time it is shown
- ``GET    /api/v1/organizations/{org_id}/devices/{device_id}/tokens``
- ``DELETE /api/v1/organizations/{org_id}/devices/{device_id}/tokens/{token_id}`` — revoke

Rotation: create a new token, move the device to it, revoke the old one. Revoking a token
disconnects the device (it reconnects with a token that is still valid).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mqtthub.auth.credentials import new_device_token, token_hint
from mqtthub.auth.deps import CurrentUser, require_org_access
from mqtthub.auth.devices import get_device
from mqtthub.auth.live import end_access_after_commit
from mqtthub.crypto import SecretBox
from mqtthub.db.base import utcnow
from mqtthub.errors import ConflictError, NotFoundError
from mqtthub.models import Device, DeviceToken
from mqtthub.web.deps import SecretsDep, SessionDep, SettingsDep
from mqtthub.web.openapi import errors


@dataclass(frozen=True, slots=True)
class IssuedDeviceToken:
    """A new token record and its plaintext, which exists only here."""

    record: DeviceToken
    token: str


class DeviceTokenCreate(BaseModel):
    """A new device token."""

    name: str = Field("", max_length=200)
    expires_in_days: int | None = Field(None, ge=1, le=3650, description="Default: `device_token_expiry_days`.")


class DeviceTokenOut(BaseModel):
    """A device token without its secret."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    device_id: str
    name: str
    hint: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class DeviceTokenCreated(DeviceTokenOut):
    """A device token with its secret: ``token`` is shown only in this response."""

    token: str
    message: str = "Save this token now - it will not be shown again."


class DeviceTokenList(BaseModel):
    """Tokens of a device."""

    tokens: list[DeviceTokenOut]
    count: int


async def issue_device_token(
    session: AsyncSession, secrets: SecretBox, device: Device, *, name: str = "", lifetime: timedelta | None
) -> IssuedDeviceToken:
    """Create a token for ``device``; ``lifetime=None`` makes one that never expires."""
    token = new_device_token()
    record = DeviceToken(
        device_id=device.id,
        name=name,
        token_hash=secrets.hash_token(token),
        hint=token_hint(token),
        expires_at=utcnow() + lifetime if lifetime is not None else None,
    )
    session.add(record)
    await session.flush()
    return IssuedDeviceToken(record, token)


async def list_device_tokens(session: AsyncSession, device_id: str) -> list[DeviceToken]:
    """A device's tokens, oldest first, revoked ones included."""
    query = select(DeviceToken).where(DeviceToken.device_id == device_id).order_by(DeviceToken.created_at)
    return list((await session.scalars(query)).all())


async def revoke_device_token(session: AsyncSession, device: Device, token_id: str) -> DeviceToken:
    """Revoke one of the device's tokens and disconnect the device once committed.

    The device's sessions stay: they belong to the device, which may hold other valid tokens
    (disabling or deleting the device ends them).

    Raises:
        NotFoundError: the device has no such token.
        ConflictError: it is already revoked.
    """
    record = await session.get(DeviceToken, token_id)
    if record is None or record.device_id != device.id:
        raise NotFoundError("device token not found")
    if record.revoked_at is not None:
        raise ConflictError("the token is already revoked")
    record.revoked_at = utcnow()
    await session.flush()
    end_access_after_commit(session, [f"device:{device.id}"], end_sessions=False)
    return record


router = APIRouter(prefix="/api/v1/organizations/{org_id}/devices/{device_id}/tokens", tags=["devices"])


@router.post("", status_code=201, summary="Create a device token")
async def create(
    org_id: str,
    device_id: str,
    body: DeviceTokenCreate,
    user: CurrentUser,
    session: SessionDep,
    secrets: SecretsDep,
    settings: SettingsDep,
) -> DeviceTokenCreated:
    """A new token for the device: its MQTT password, shown only in this response."""
    require_org_access(user, org_id, admin=True)
    device = await get_device(session, org_id, device_id)
    days = body.expires_in_days or settings.device_token_expiry_days
    issued = await issue_device_token(session, secrets, device, name=body.name, lifetime=timedelta(days=days))
    return DeviceTokenCreated(**DeviceTokenOut.model_validate(issued.record).model_dump(), token=issued.token)


@router.get("", summary="List device tokens")
async def list_all(org_id: str, device_id: str, user: CurrentUser, session: SessionDep) -> DeviceTokenList:
    """The device's tokens, without their secrets."""
    require_org_access(user, org_id, admin=True)
    device = await get_device(session, org_id, device_id)
    tokens = [DeviceTokenOut.model_validate(token) for token in await list_device_tokens(session, device.id)]
    return DeviceTokenList(tokens=tokens, count=len(tokens))


@router.delete("/{token_id}", summary="Revoke a device token", responses=errors(409))
async def revoke(org_id: str, device_id: str, token_id: str, user: CurrentUser, session: SessionDep) -> DeviceTokenOut:
    """Revoke the token; connections made with it end at once."""
    require_org_access(user, org_id, admin=True)
    device = await get_device(session, org_id, device_id)
    record = await revoke_device_token(session, device, token_id)
    return DeviceTokenOut.model_validate(record)
