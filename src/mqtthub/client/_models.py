"""Typed answers of the hub. Unknown fields are kept (``model_extra``), so newer hubs stay readable."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class ServiceInfo(_Model):
    """``GET /``."""

    service: str
    version: str
    status: str
    links: dict[str, str] = {}


class Health(_Model):
    """``GET /health``."""

    status: str
    mqtt_connected: bool = False
    uptime: float
    message_count: int = 0
    active_subscriptions: int = 0
    websocket_connections: int = 0
    version: str | None = None
    components: dict[str, Any] = {}


class PublishResult(_Model):
    """``POST /publish``."""

    success: bool
    message: str
    topic: str
    qos: int
    retain: bool
    payload_size: int
    timestamp: datetime


class SubscriptionResult(_Model):
    """``POST /subscribe`` and ``DELETE /subscribe/{topic}``."""

    success: bool
    message: str
    topic: str
    qos: int | None = None


class Message(_Model):
    """A message from the history or the live stream."""

    id: str | None = None
    topic: str
    payload: str
    payload_encoding: Literal["utf-8", "base64"] = "utf-8"
    qos: int
    retain: bool
    timestamp: datetime

    @property
    def payload_bytes(self) -> bytes:
        """The payload as the publisher sent it."""
        if self.payload_encoding == "base64":
            return base64.b64decode(self.payload)
        return self.payload.encode()


class MessagePage(_Model):
    """``GET /messages``: a page of the history, newest first."""

    messages: list[Message]
    count: int
    total: int
    limit: int
    offset: int


class TopicInfo(_Model):
    """A topic of the history."""

    topic: str
    message_count: int
    last_message_at: datetime


class TopicList(_Model):
    """``GET /topics``."""

    topics: list[TopicInfo]
    count: int
    subscriptions: list[str]


class Stats(_Model):
    """``GET /stats``."""

    total_messages: int
    unique_topics: int
    recent_messages: int
    topic_counts: dict[str, int]
    active_subscriptions: int = 0
    mqtt_connected: bool
    websocket_connections: int
    uptime: float


class LoginUser(_Model):
    """The user a session token belongs to."""

    id: str
    email: str
    role: str
    organization_id: str | None = None


class Session(_Model):
    """``POST /api/v1/auth/login``: the session token and who it is for."""

    token: str
    token_type: str = "bearer"  # noqa: S105 (the scheme name, not a secret)
    expires_at: datetime
    user: LoginUser


class Organization(_Model):
    """An organization."""

    id: str
    name: str
    short_id: str
    created_at: datetime


class OrganizationList(_Model):
    """``GET /api/v1/organizations``."""

    organizations: list[Organization]
    count: int
