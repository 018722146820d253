"""Typed answers of the hub's identity endpoints: users, devices, their tokens, MQTT API tokens, certificates."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class User(_Model):
    """A user of an organization."""

    id: str
    email: str
    role: str
    organization_id: str | None = None
    is_active: bool
    created_at: datetime


class UserList(_Model):
    """``GET /api/v1/organizations/{org_id}/users``."""

    users: list[User]
    count: int


class Device(_Model):
    """A device of an organization (``id`` is its MQTT username)."""

    id: str
    organization_id: str
    name: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    enabled: bool
    created_at: datetime
    updated_at: datetime


class DeviceList(_Model):
    """``GET /api/v1/organizations/{org_id}/devices``."""

    devices: list[Device]
    count: int


class DeviceToken(_Model):
    """A device token, without its secret."""

    id: str
    device_id: str
    name: str
    hint: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


class DeviceTokenCreated(DeviceToken):
    """A new device token; ``token`` is shown only once."""

    token: str


class DeviceTokenList(_Model):
    """A device's tokens."""

    tokens: list[DeviceToken]
    count: int


class TokenPermissions(_Model):
    """Topic filters an MQTT API token may subscribe with and publish to."""

    subscribe: list[str]
    publish: list[str]


class MqttToken(_Model):
    """An MQTT API token, without its secret."""

    token_id: str
    name: str
    description: str = ""
    token_hint: str
    status: str
    permissions: TokenPermissions
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


class MqttTokenCreated(_Model):
    """A new MQTT API token; ``token`` is shown only once."""

    success: bool = True
    token_id: str
    token: str
    expires_at: datetime
    permissions: TokenPermissions
    message: str = ""


class MqttTokenList(_Model):
    """An organization's MQTT API tokens."""

    tokens: list[MqttToken]
    count: int


class MqttTokenRevoked(_Model):
    """A revoked MQTT API token."""

    success: bool = True
    token_id: str
    revoked_at: datetime
    message: str = ""


class CertificateConfig(_Model):
    """Where to fetch a client certificate once, its password, client id and topics (document 003's names)."""

    p12Url: str  # noqa: N815
    p12Password: str  # noqa: N815
    clientId: str  # noqa: N815
    subTopics: list[str]  # noqa: N815


class CertificateIssued(_Model):
    """A newly issued client certificate."""

    success: bool = True
    data: CertificateConfig
    serial: str
    expires_at: datetime


class Certificate(_Model):
    """A client certificate issued by the hub's CA."""

    serial: str
    common_name: str
    device_id: str | None = None
    user_id: str | None = None
    created_at: datetime
    not_after: datetime
    revoked_at: datetime | None = None
    downloaded: bool


class CertificateList(_Model):
    """An organization's client certificates."""

    certificates: list[Certificate]
    count: int
