"""An organization's retained messages: browse them by topic filter, page by page, and clear one.

Endpoints (session token):

- ``GET    /api/v1/organizations/{org_id}/retained?filter=#&offset=0&limit=50`` (members)
- ``DELETE /api/v1/organizations/{org_id}/retained/{topic}`` (org admin)

Clearing publishes an empty retained message to the topic, which is how MQTT removes one [MQTT-3.3.1-10]
(current subscribers receive that empty message, as with any MQTT client's clear). Only the embedded broker's
retained messages can be listed; with an external broker these endpoints answer 503.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field

from mqtthub.auth.deps import CurrentUser, require_org_access
from mqtthub.broker.handle import BrokerHandle
from mqtthub.errors import NotFoundError, StateError, UnavailableError
from mqtthub.messaging.clients import organization_scope
from mqtthub.messaging.deps import MessagingDep
from mqtthub.messaging.namespace import OrgScope, check_topic_filter, check_topic_name, checked
from mqtthub.messaging.schemas import PayloadEncoding, encode_payload
from mqtthub.messaging.service import MessagingService
from mqtthub.models.messaging import MAX_RECORDED_TOPIC_LENGTH
from mqtthub.web.deps import SessionDep, StateDep
from mqtthub.web.openapi import errors
from mqtthub.web.params import MAX_OFFSET

MAX_RETAINED_PAGE = 200
"""Most retained messages one page holds (each may carry a large payload)."""


class RetainedOut(BaseModel):
    """A retained message."""

    topic: str
    payload: str
    payload_encoding: PayloadEncoding = Field(description="`utf-8`, or `base64` for a payload that is not text.")
    payload_size: int
    qos: int
    timestamp: datetime = Field(description="When the broker received it.")


class RetainedList(BaseModel):
    """One page of the retained messages matching a filter, by topic."""

    messages: list[RetainedOut]
    count: int = Field(description="Retained messages matching the filter, on every page.")
    offset: int
    limit: int


def retained_page(broker: BrokerHandle, scope: OrgScope, topic_filter: str, offset: int, limit: int) -> RetainedList:
    """The retained messages of the organization matching a checked ``topic_filter``, by topic, one page.

    Raises:
        UnavailableError: the broker is not running, or keeps retained messages where they cannot be listed.
    """
    try:
        found = broker.retained(scope.namespace.internal(topic_filter))
    except StateError as exc:
        raise UnavailableError(f"the MQTT broker is not available: {exc.message}") from None
    found.sort(key=lambda message: message.topic)
    messages = []
    for message in found[offset : offset + limit]:
        payload, encoding = encode_payload(message.payload)
        messages.append(
            RetainedOut(
                topic=scope.namespace.external(message.topic),
                payload=payload,
                payload_encoding=encoding,
                payload_size=len(message.payload),
                qos=message.qos,
                timestamp=datetime.fromtimestamp(message.received_at, UTC),
            )
        )
    return RetainedList(messages=messages, count=len(found), offset=offset, limit=limit)


async def clear_retained(broker: BrokerHandle, service: MessagingService, scope: OrgScope, topic: str) -> None:
    """Remove the retained message of a checked ``topic`` of the organization.

    Raises:
        NotFoundError: the topic has no retained message.
        UnavailableError: the broker is not running, or keeps retained messages where they cannot be listed.
    """
    if not retained_page(broker, scope, topic, 0, 1).count:
        raise NotFoundError("this topic has no retained message")
    await service.publish(scope, topic, b"", qos=0, retain=True)


router = APIRouter(prefix="/api/v1/organizations/{org_id}/retained", tags=["broker"], responses=errors(401, 403, 503))
PageSize = Annotated[int, Query(ge=1, le=MAX_RETAINED_PAGE, description="Page size.")]
Skip = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Retained messages skipped, in topic order.")]


@router.get("", summary="Retained messages", responses=errors(404))
async def list_retained(
    org_id: str,
    user: CurrentUser,
    session: SessionDep,
    state: StateDep,
    topic_filter: Annotated[str, Query(alias="filter", min_length=1, description="A topic filter.")] = "#",
    offset: Skip = 0,
    limit: PageSize = 50,
) -> RetainedList:
    """The organization's retained messages whose topic matches ``filter``, sorted by topic."""
    require_org_access(user, org_id)
    checked(check_topic_filter, topic_filter, "query", "filter")
    scope = await organization_scope(session, org_id)
    return retained_page(state.broker, scope, topic_filter, offset, limit)


@router.delete("/{topic:path}", status_code=204, summary="Clear a retained message", responses=errors(404))
async def clear(
    org_id: str,
    topic: Annotated[str, Path(min_length=1, max_length=MAX_RECORDED_TOPIC_LENGTH)],
    user: CurrentUser,
    session: SessionDep,
    state: StateDep,
    service: MessagingDep,
) -> Response:
    """Remove the retained message of ``topic`` (org admins): later subscribers no longer receive it."""
    require_org_access(user, org_id, admin=True)
    checked(check_topic_name, topic, "path")
    scope = await organization_scope(session, org_id)
    await clear_retained(state.broker, service, scope, topic)
    return Response(status_code=204)
