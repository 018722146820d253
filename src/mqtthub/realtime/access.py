"""Who a live-stream client is: a user's session token (JWT) or an organization's MQTT API token.

Either way the client is confined to one organization. An API token also keeps its
subscribe permissions on the live stream: a topic filter is accepted only when it lies
within one of the token's ``subscribe`` filters (by default ``device/+/telemetry/#``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select

from mqtthub.auth.credentials import API_TOKEN_PREFIX
from mqtthub.auth.jwt import verify_session_token
from mqtthub.crypto import SecretBox
from mqtthub.db import Database
from mqtthub.db.base import utcnow
from mqtthub.errors import PermissionDeniedError, UnauthenticatedError, ValidationFailedError
from mqtthub.models import MqttApiToken, Organization, User, UserRole
from mqtthub.tenancy import filter_within


@dataclass(frozen=True, slots=True)
class StreamIdentity:
    """An authenticated live-stream client: its organization and, for API tokens, its allowed filters."""

    organization_id: str
    subject: str
    allowed: tuple[str, ...] | None = None
    """Filters the client's own filters must lie within; None means any topic of the organization."""

    def check(self, filters: Iterable[str]) -> list[str]:
        """The filters, if the identity may use them.

        Raises:
            PermissionDeniedError: a filter reaches beyond an API token's subscribe permissions.
        """
        chosen = list(filters)
        if self.allowed is not None:
            for topic_filter in chosen:
                if not isinstance(topic_filter, str):
                    raise ValidationFailedError("topic filters must be strings", field="topics")
                if not any(filter_within(topic_filter, allowed) for allowed in self.allowed):
                    raise PermissionDeniedError(f"this token may not subscribe to {topic_filter!r}")
        return chosen


class StreamAuthenticator:
    """Resolves a bearer token to a :class:`StreamIdentity`."""

    def __init__(self, database: Database, secrets: SecretBox) -> None:
        self._database = database
        self._secrets = secrets

    async def identify(self, token: str | None, organization_id: str | None = None) -> StreamIdentity:
        """The identity behind ``token``; a platform administrator names the organization to watch.

        Raises:
            UnauthenticatedError: no token, or an invalid, expired or revoked one.
            PermissionDeniedError: the organization asked for is not the caller's.
        """
        if not token:
            raise UnauthenticatedError("a session token or an MQTT API token is required")
        if token.startswith(API_TOKEN_PREFIX):
            return await self._api_token(token, organization_id)
        claims = verify_session_token(self._secrets.signing_key, token)
        async with self._database.session() as session:
            user = await session.get(User, claims.user_id)
            if user is None or not user.is_active:
                raise UnauthenticatedError("the account of this session token no longer exists or is disabled")
            wanted = organization_id or user.organization_id
            if wanted is None:
                raise ValidationFailedError("name the organization to watch (organization_id)", field="organization_id")
            if user.role is not UserRole.PLATFORM_ADMIN and wanted != user.organization_id:
                raise PermissionDeniedError("you do not have access to this organization")
            if await session.get(Organization, wanted) is None:
                raise PermissionDeniedError("you do not have access to this organization")
        return StreamIdentity(wanted, f"user:{user.id}")

    async def _api_token(self, token: str, organization_id: str | None) -> StreamIdentity:
        async with self._database.session() as session:
            row = await session.scalar(
                select(MqttApiToken).where(MqttApiToken.token_hash == self._secrets.hash_token(token))
            )
        if row is None or row.revoked_at is not None or row.expires_at <= utcnow():
            raise UnauthenticatedError("unknown, revoked or expired MQTT API token")
        if organization_id is not None and organization_id != row.organization_id:
            raise PermissionDeniedError("this token belongs to another organization")
        return StreamIdentity(row.organization_id, f"token:{row.id}", tuple(row.subscribe))
