"""MQTT API tokens for third-party apps, served as document 000 describes them.

Endpoints (org admins; errors are ``{"success": false, "error", "code"}``):

- ``POST   /api/v1/organizations/{org_id}/mqtt-tokens`` — ``{name, description?, expires_in_days? (90),
  permissions? {subscribe, publish}}`` → ``{success, token_id, token, expires_at, permissions, message}``;
  the token is shown only here
- ``GET    /api/v1/organizations/{org_id}/mqtt-tokens`` — every token, never its secret
- ``GET    /api/v1/organizations/{org_id}/mqtt-tokens/{token_id}`` — one token, with ``last_used_at``
- ``DELETE /api/v1/organizations/{org_id}/mqtt-tokens/{token_id}`` — revoke; its connections end at once

An app connects with the token as both user name and password. By default it may
subscribe to ``device/+/telemetry/#`` and publish nowhere; custom filters are checked
as MQTT filters and, like every topic of the token, live in the organization's namespace.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mqtthub.auth.acl import DEFAULT_APP_SUBSCRIBE, validate_permission_filters
from mqtthub.auth.credentials import new_api_token, token_hint
from mqtthub.auth.deps import CurrentUser, require_org_access
from mqtthub.auth.live import end_access_after_commit
from mqtthub.auth.organizations import get_organization
from mqtthub.crypto import SecretBox
from mqtthub.db.base import utcnow
from mqtthub.errors import NotFoundError
from mqtthub.models import MqttApiToken
from mqtthub.web.deps import SecretsDep, SessionDep

CREATED_MESSAGE = "Token generated successfully. Save this token now - it will not be shown again."
REVOKED_MESSAGE = "Token revoked successfully. Clients using it have been disconnected."


class Permissions(BaseModel):
    """Topic filters a token may subscribe with and publish to, inside its organization."""

    subscribe: list[str] = Field(default_factory=lambda: list(DEFAULT_APP_SUBSCRIBE))
    publish: list[str] = Field(default_factory=list)


class MqttTokenCreate(BaseModel):
    """A new MQTT API token."""

    name: str = Field(min_length=1, max_length=200, description="A label, e.g. the app's name.")
    description: str = Field("", max_length=1000)
    expires_in_days: int = Field(90, ge=1, le=3650)
    permissions: Permissions = Field(default_factory=Permissions)


class MqttTokenCreated(BaseModel):
    """Document 000's response: the token is shown only here."""

    success: bool = True
    token_id: str
    token: str
    expires_at: datetime
    permissions: Permissions
    message: str = CREATED_MESSAGE


class MqttTokenInfo(BaseModel):
    """A token without its secret."""

    token_id: str
    name: str
    description: str
    token_hint: str
    status: Literal["active", "expired", "revoked"]
    permissions: Permissions
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def of(cls, token: MqttApiToken) -> MqttTokenInfo:
        """The public view of a stored token."""
        status: Literal["active", "expired", "revoked"] = "active"
        if token.revoked_at is not None:
            status = "revoked"
        elif token.expires_at <= utcnow():
            status = "expired"
        return cls(
            token_id=token.id,
            name=token.name,
            description=token.description,
            token_hint=token.hint,
            status=status,
            permissions=Permissions(subscribe=token.subscribe, publish=token.publish),
            created_at=token.created_at,
            expires_at=token.expires_at,
            revoked_at=token.revoked_at,
            last_used_at=token.last_used_at,
        )


class MqttTokenDetails(MqttTokenInfo):
    """``GET …/mqtt-tokens/{token_id}``."""

    success: bool = True


class MqttTokenList(BaseModel):
    """``GET …/mqtt-tokens``."""

    success: bool = True
    tokens: list[MqttTokenInfo]
    count: int


class MqttTokenRevoked(BaseModel):
    """``DELETE …/mqtt-tokens/{token_id}``."""

    success: bool = True
    token_id: str
    revoked_at: datetime
    message: str = REVOKED_MESSAGE


@dataclass(frozen=True, slots=True)
class IssuedApiToken:
    """A new token record and its plaintext, which exists only here."""

    record: MqttApiToken
    token: str


async def issue_api_token(
    session: AsyncSession,
    secrets: SecretBox,
    organization_id: str,
    *,
    name: str,
    description: str = "",
    lifetime: timedelta,
    subscribe: list[str] | None = None,
    publish: list[str] | None = None,
    created_by: str | None = None,
) -> IssuedApiToken:
    """Create an MQTT API token of the organization.

    Raises:
        NotFoundError: the organization does not exist.
        ValidationFailedError: a permission filter is invalid.
    """
    organization = await get_organization(session, organization_id)
    allowed_subscribe = validate_permission_filters(
        list(DEFAULT_APP_SUBSCRIBE) if subscribe is None else subscribe, "permissions.subscribe"
    )
    allowed_publish = validate_permission_filters(publish or [], "permissions.publish")
    token = new_api_token(organization.short_id)
    record = MqttApiToken(
        organization_id=organization.id,
        name=name,
        description=description,
        token_hash=secrets.hash_token(token),
        hint=token_hint(token),
        subscribe=list(allowed_subscribe),
        publish=list(allowed_publish),
        created_by=created_by,
        expires_at=utcnow() + lifetime,
    )
    session.add(record)
    await session.flush()
    return IssuedApiToken(record, token)


async def list_api_tokens(session: AsyncSession, organization_id: str) -> list[MqttApiToken]:
    """The organization's tokens, newest first, revoked and expired ones included."""
    query = (
        select(MqttApiToken)
        .where(MqttApiToken.organization_id == organization_id)
        .order_by(MqttApiToken.created_at.desc(), MqttApiToken.id)
    )
    return list((await session.scalars(query)).all())


async def get_api_token(session: AsyncSession, organization_id: str, token_id: str) -> MqttApiToken:
    """One token of the organization.

    Raises:
        NotFoundError: no such token in this organization.
    """
    record = await session.get(MqttApiToken, token_id)
    if record is None or record.organization_id != organization_id:
        raise NotFoundError("MQTT API token not found")
    return record


async def revoke_api_token(session: AsyncSession, record: MqttApiToken) -> MqttApiToken:
    """Revoke a token (again is harmless) and disconnect its clients once committed."""
    if record.revoked_at is None:
        record.revoked_at = utcnow()
        await session.flush()
    end_access_after_commit(session, [f"token:{record.id}"])
    return record


router = APIRouter(prefix="/api/v1/organizations/{org_id}/mqtt-tokens", tags=["mqtt-tokens"])


@router.post("", status_code=201, summary="Generate an MQTT API token")
async def create(
    org_id: str, body: MqttTokenCreate, user: CurrentUser, session: SessionDep, secrets: SecretsDep
) -> MqttTokenCreated:
    """A new token for an app; save it, it is shown only in this response."""
    require_org_access(user, org_id, admin=True)
    issued = await issue_api_token(
        session,
        secrets,
        org_id,
        name=body.name,
        description=body.description,
        lifetime=timedelta(days=body.expires_in_days),
        subscribe=body.permissions.subscribe,
        publish=body.permissions.publish,
        created_by=user.id,
    )
    record = issued.record
    return MqttTokenCreated(
        token_id=record.id,
        token=issued.token,
        expires_at=record.expires_at,
        permissions=Permissions(subscribe=record.subscribe, publish=record.publish),
    )


@router.get("", summary="List MQTT API tokens")
async def list_all(org_id: str, user: CurrentUser, session: SessionDep) -> MqttTokenList:
    """Every token of the organization, without secrets."""
    require_org_access(user, org_id, admin=True)
    await get_organization(session, org_id)
    tokens = [MqttTokenInfo.of(record) for record in await list_api_tokens(session, org_id)]
    return MqttTokenList(tokens=tokens, count=len(tokens))


@router.get("/{token_id}", summary="Get MQTT API token details")
async def get(org_id: str, token_id: str, user: CurrentUser, session: SessionDep) -> MqttTokenDetails:
    """One token, with when it was last used to connect."""
    require_org_access(user, org_id, admin=True)
    info = MqttTokenInfo.of(await get_api_token(session, org_id, token_id))
    return MqttTokenDetails(**info.model_dump())


@router.delete("/{token_id}", summary="Revoke an MQTT API token")
async def revoke(org_id: str, token_id: str, user: CurrentUser, session: SessionDep) -> MqttTokenRevoked:
    """Revoke the token; clients connected with it are disconnected at once."""
    require_org_access(user, org_id, admin=True)
    record = await revoke_api_token(session, await get_api_token(session, org_id, token_id))
    assert record.revoked_at is not None
    return MqttTokenRevoked(token_id=record.id, revoked_at=record.revoked_at)
