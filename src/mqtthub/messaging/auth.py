"""Who calls the messaging API, inside which organization, with which rights.

Three kinds of credentials are accepted, every one resolving to a :class:`Caller` bound to
exactly one organization:

- ``X-API-Key: <MQTT API token>``: an app's MQTT API token of the organization (the same
  token an app uses as MQTT username and password); its ``publish``/``subscribe`` topic
  filters bound what it may do, and an empty ``publish`` list makes it subscribe-only.
- ``Authorization: Bearer <MQTT API token>``: the same, as a bearer token.
- ``Authorization: Bearer <session token>``: a user's JWT from ``POST /api/v1/auth/login``;
  the user acts on the whole namespace of their organization.

WebSocket clients, which cannot always set headers (browsers), may pass ``?api_key=`` or
``?token=`` instead; a platform administrator's session may name another organization with
``?organization_id=``. Every resolved call takes one token from the caller's rate-limit bucket.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from mqtthub.auth.jwt import verify_session_token
from mqtthub.errors import PermissionDeniedError, RateLimitedError, UnauthenticatedError
from mqtthub.messaging.namespace import OrgScope
from mqtthub.messaging.service import MessagingService
from mqtthub.models import MqttApiToken, Organization, User, UserRole
from mqtthub.mqtt.topics import topic_matches
from mqtthub.observability.auth_checks import AuthChecks
from mqtthub.tenancy import filter_within
from mqtthub.web.deps import SessionDep
from mqtthub.web.state import app_state

_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="An MQTT API token of the organization.")
_bearer = HTTPBearer(
    auto_error=False, description="A session token from `POST /api/v1/auth/login`, or an MQTT API token."
)


@dataclass(frozen=True, slots=True)
class Caller:
    """The organization a call acts in and what it may do there.

    ``publish_filters``/``subscribe_filters`` are ``None`` when the caller may use the whole
    namespace (a user), or the topic filters of an MQTT API token.
    """

    key: str
    """Identifies the caller for rate limiting: ``user:<id>`` or ``token:<id>``."""
    scope: OrgScope
    publish_filters: tuple[str, ...] | None = None
    subscribe_filters: tuple[str, ...] | None = None

    @property
    def organization_id(self) -> str:
        """The caller's organization."""
        return self.scope.organization_id

    def can_publish(self, topic: str) -> bool:
        """Whether the caller may publish to topic name ``topic`` (namespace-relative)."""
        if self.publish_filters is None:
            return True
        return any(topic_matches(allowed, topic) for allowed in self.publish_filters)

    def can_subscribe(self, topic_filter: str) -> bool:
        """Whether the caller may read everything matching ``topic_filter`` (namespace-relative)."""
        if self.subscribe_filters is None:
            return True
        return any(filter_within(topic_filter, allowed) for allowed in self.subscribe_filters)

    def can_read(self, topic: str) -> bool:
        """Whether the caller may see a message of topic name ``topic``."""
        if self.subscribe_filters is None:
            return True
        return any(topic_matches(allowed, topic) for allowed in self.subscribe_filters)

    def require_publish(self, topic: str) -> None:
        """Raise :class:`PermissionDeniedError` unless the caller may publish to ``topic``."""
        if not self.can_publish(topic):
            if not self.publish_filters:
                raise PermissionDeniedError("this token is subscribe-only: it may not publish")
            raise PermissionDeniedError(f"this token may not publish to {topic!r}")

    def require_subscribe(self, topic_filter: str) -> None:
        """Raise :class:`PermissionDeniedError` unless the caller may read ``topic_filter``."""
        if not self.can_subscribe(topic_filter):
            raise PermissionDeniedError(f"this token may not subscribe to {topic_filter!r}")

    @property
    def readable(self) -> Sequence[str] | None:
        """The filters bounding what the caller may read, or None for the whole namespace."""
        return self.subscribe_filters


def _looks_like_jwt(value: str) -> bool:
    return value.count(".") == 2


async def _token_caller(connection: HTTPConnection, session: AsyncSession, token: str) -> Caller:
    digest = app_state(connection).secrets.hash_token(token)
    row = (
        await session.execute(
            select(MqttApiToken, Organization.short_id)
            .join(Organization, Organization.id == MqttApiToken.organization_id)
            .where(MqttApiToken.token_hash == digest)
        )
    ).first()
    if row is None:
        raise UnauthenticatedError("invalid API token")
    api_token, short_id = row
    if api_token.revoked_at is not None:
        raise UnauthenticatedError("this API token was revoked")
    if api_token.expires_at <= datetime.now(UTC):
        raise UnauthenticatedError("this API token has expired")
    return Caller(
        key=f"token:{api_token.id}",
        scope=OrgScope.of(api_token.organization_id, short_id),
        publish_filters=tuple(api_token.publish),
        subscribe_filters=tuple(api_token.subscribe),
    )


async def _user_caller(
    connection: HTTPConnection, session: AsyncSession, token: str, organization_id: str | None
) -> Caller:
    claims = verify_session_token(app_state(connection).secrets.signing_key, token)
    user = await session.get(User, claims.user_id)
    if user is None or not user.is_active:
        raise UnauthenticatedError("the account of this session token no longer exists or is disabled")
    wanted = organization_id or user.organization_id
    if wanted != user.organization_id and user.role is not UserRole.PLATFORM_ADMIN:
        raise PermissionDeniedError("you do not have access to this organization")
    if wanted is None:
        raise PermissionDeniedError("this account belongs to no organization, so it has no topics")
    organization = await session.get(Organization, wanted)
    if organization is None:
        raise PermissionDeniedError("this organization does not exist (any more)")
    return Caller(key=f"user:{user.id}", scope=OrgScope.of(organization.id, organization.short_id))


async def resolve_caller(
    connection: HTTPConnection,
    session: AsyncSession,
    *,
    api_key: str | None,
    bearer: str | None,
    query: Mapping[str, str] | None = None,
    rate_limited: bool = True,
) -> Caller:
    """Authenticate a call and (unless ``rate_limited`` is False) take one request from the caller's rate limit.

    Raises:
        UnauthenticatedError: no credentials, or invalid, expired or revoked ones.
        PermissionDeniedError: a user without an organization.
        RateLimitedError: the caller is above the configured request rate.
    """
    query = query or {}
    api_key = api_key or query.get("api_key")
    bearer = bearer or query.get("token")
    checks = app_state(connection).service(AuthChecks)
    token = api_key or bearer
    if not token:
        checks.refused("none")
        raise UnauthenticatedError("missing credentials: send X-API-Key or Authorization: Bearer")
    if not api_key and _looks_like_jwt(token):
        with checks.check("session_token"):
            caller = await _user_caller(connection, session, token, query.get("organization_id"))
    else:
        with checks.check("api_token"):
            caller = await _token_caller(connection, session, token)
    retry_after = app_state(connection).service(MessagingService).limiter.acquire(caller.key) if rate_limited else 0.0
    if retry_after > 0:
        raise RateLimitedError("too many requests", retry_after=retry_after)
    return caller


async def current_caller(
    request: Request,
    session: SessionDep,
    api_key: Annotated[str | None, Depends(_api_key)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """The request dependency: see :func:`resolve_caller`."""
    bearer = credentials.credentials if credentials is not None else None
    return await resolve_caller(request, session, api_key=api_key, bearer=bearer)


CallerDep = Annotated[Caller, Depends(current_caller)]
