"""Who may call the telemetry endpoints: devices by their token, users by their session.

A device authenticates its HTTP messages with the same token it uses as its MQTT password,
as ``Authorization: Bearer <device token>`` or, as in document 001, in the ``token`` field
of the JSON body.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mqtthub.auth.deps import AuthenticatedUser, require_org_access
from mqtthub.crypto import SecretBox
from mqtthub.db import Database
from mqtthub.db.base import utcnow
from mqtthub.errors import NotFoundError, PermissionDeniedError, UnauthenticatedError
from mqtthub.models import Device, DeviceToken


@dataclass(frozen=True, slots=True)
class DeviceCaller:
    """A device authenticated by its token."""

    device_id: str
    organization_id: str


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def body_token(payload: bytes) -> str | None:
    """The ``token`` field of a JSON object body, if there is one."""
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, ValueError):
        return None
    token = document.get("token") if isinstance(document, dict) else None
    return token if isinstance(token, str) and token else None


async def authenticate_device(
    database: Database, secrets: SecretBox, device_id: str, token: str | None
) -> DeviceCaller:
    """The device whose token this is, which must be the device named in the path.

    Raises:
        UnauthenticatedError: no token, or an unknown, revoked or expired one (401).
        PermissionDeniedError: the token belongs to another device, or the device is disabled (403).
    """
    if token is None:
        raise UnauthenticatedError("missing device token: send Authorization: Bearer <device token>")
    async with database.session() as session:
        row = (
            await session.execute(
                select(DeviceToken, Device)
                .join(Device, Device.id == DeviceToken.device_id)
                .where(DeviceToken.token_hash == secrets.hash_token(token))
            )
        ).one_or_none()
    if row is None:
        raise UnauthenticatedError("unknown device token")
    device_token, device = row._tuple()
    now = utcnow()
    if device_token.revoked_at is not None or (device_token.expires_at is not None and device_token.expires_at <= now):
        raise UnauthenticatedError("the device token is revoked or expired")
    if device.id != device_id:
        raise PermissionDeniedError("this token belongs to another device")
    if not device.enabled:
        raise PermissionDeniedError("the device is disabled")
    return DeviceCaller(device.id, device.organization_id)


def can_see(user: AuthenticatedUser, organization_id: str) -> bool:
    """Whether the user may read the organization's data."""
    return user.is_platform_admin or user.organization_id == organization_id


async def device_for_user(
    session: AsyncSession, user: AuthenticatedUser, device_id: str, *, admin: bool = False
) -> Device:
    """A device the user may see (404 otherwise, so other organizations' ids stay unknowable).

    Raises:
        NotFoundError: no such device visible to the user.
        PermissionDeniedError: ``admin`` is required and the user is only a member.
    """
    device = await session.get(Device, device_id)
    if device is None or not can_see(user, device.organization_id):
        raise NotFoundError(f"device {device_id} not found")
    if admin:
        require_org_access(user, device.organization_id, admin=True)
    return device
