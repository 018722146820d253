"""The REST endpoints of the messaging API (reference document 004), scoped to the caller's organization."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query

from mqtthub.messaging import history
from mqtthub.messaging.auth import CallerDep
from mqtthub.messaging.deps import MessagingDep
from mqtthub.messaging.namespace import check_topic_filter, checked
from mqtthub.messaging.schemas import (
    MessageOut,
    MessagesResponse,
    PublishRequest,
    PublishResponse,
    StatsResponse,
    SubscribeRequest,
    SubscriptionResponse,
    TopicInfo,
    TopicsResponse,
    encode_payload,
)
from mqtthub.web.deps import SessionDep
from mqtthub.web.limits import BodySize, body_size
from mqtthub.web.openapi import errors
from mqtthub.web.params import Limit, Offset

RECENT = timedelta(hours=1)


ERRORS = errors(401, 403, 429)
BROKER_ERRORS = errors(401, 403, 429, 503)

router = APIRouter(tags=["messaging"], responses=ERRORS)


@router.post("/publish", response_model=PublishResponse, responses=BROKER_ERRORS, summary="Publish a message")
@body_size(BodySize.MESSAGE)
async def publish(body: PublishRequest, caller: CallerDep, service: MessagingDep) -> PublishResponse:
    """Publish to ``topic`` inside the caller's namespace through the broker."""
    caller.require_publish(body.topic)
    payload = body.payload_bytes()
    await service.publish(caller.scope, body.topic, payload, qos=body.qos, retain=body.retain)
    return PublishResponse(
        message=f"Message published to {body.topic}",
        topic=body.topic,
        qos=body.qos,
        retain=body.retain,
        payload_size=len(payload),
        timestamp=datetime.now(UTC),
    )


@router.post(
    "/subscribe",
    response_model=SubscriptionResponse,
    responses=BROKER_ERRORS,
    summary="Record a topic filter's messages",
)
async def subscribe(
    body: SubscribeRequest, caller: CallerDep, session: SessionDep, service: MessagingDep
) -> SubscriptionResponse:
    """From now on, messages matching ``topic`` (``+``/``#`` allowed) are kept in the history and streamed on
    ``/ws``. Subscribing again to the same filter changes only its QoS."""
    caller.require_subscribe(body.topic)
    created = await service.subscribe(session, caller.scope, body.topic, body.qos)
    verb = "Subscribed to" if created else "Already subscribed to"
    return SubscriptionResponse(message=f"{verb} {body.topic}", topic=body.topic, qos=body.qos)


@router.delete(
    "/subscribe/{topic:path}",
    response_model=SubscriptionResponse,
    responses=errors(404),
    summary="Stop recording a topic filter",
)
async def unsubscribe(
    topic: Annotated[str, Path(description="The filter, URL-encoded (`+` as %2B, `#` as %23).")],
    caller: CallerDep,
    session: SessionDep,
    service: MessagingDep,
) -> SubscriptionResponse:
    """Stop recording a filter given to ``POST /subscribe``."""
    topic_filter = checked(check_topic_filter, topic, "path")
    caller.require_subscribe(topic_filter)
    await service.unsubscribe(session, caller.scope, topic_filter)
    return SubscriptionResponse(message=f"Unsubscribed from {topic_filter}", topic=topic_filter)


@router.get("/messages", response_model=MessagesResponse, summary="Message history")
async def messages(
    caller: CallerDep,
    session: SessionDep,
    service: MessagingDep,
    topic: Annotated[str | None, Query(description="A topic name or filter (`+`, `#`).")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
    since: Annotated[datetime | None, Query(description="Only messages received at or after (ISO 8601).")] = None,
    until: Annotated[datetime | None, Query(description="Only messages received at or before (ISO 8601).")] = None,
) -> MessagesResponse:
    """The caller's organization's recorded messages, newest first."""
    if topic is not None:
        checked(check_topic_filter, topic, "query")
        caller.require_subscribe(topic)
    await service.recorder.flushed(wait=2.0)
    found = await history.page(
        session,
        caller.organization_id,
        topic=topic,
        since=_aware(since),
        until=_aware(until),
        limit=limit,
        offset=offset,
        allowed=caller.readable,
    )
    out = []
    for row in found.rows:
        payload, encoding = encode_payload(row.payload)
        out.append(
            MessageOut(
                id=row.id,
                topic=row.topic,
                payload=payload,
                payload_encoding=encoding,
                qos=row.qos,
                retain=row.retain,
                timestamp=row.received_at,
            )
        )
    return MessagesResponse(messages=out, count=len(out), total=found.total, limit=limit, offset=offset)


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


@router.get("/topics", response_model=TopicsResponse, summary="Topics in the history")
async def topics(caller: CallerDep, session: SessionDep, service: MessagingDep) -> TopicsResponse:
    """Topics with messages in the history (busiest first) and the filters being recorded."""
    await service.recorder.flushed(wait=2.0)
    summaries = await history.topics(session, caller.organization_id, allowed=caller.readable)
    return TopicsResponse(
        topics=[TopicInfo(topic=s.topic, message_count=s.count, last_message_at=s.last_at) for s in summaries],
        count=len(summaries),
        subscriptions=[f for f in service.filters(caller.organization_id) if caller.can_subscribe(f)],
    )


@router.get("/stats", response_model=StatsResponse, summary="Messaging statistics")
async def stats(caller: CallerDep, session: SessionDep, service: MessagingDep) -> StatsResponse:
    """Counts over the caller's organization's history, and the state of the broker and the live stream."""
    await service.recorder.flushed(wait=2.0)
    summaries = await history.topics(session, caller.organization_id, allowed=caller.readable)
    recent = await history.topics(
        session, caller.organization_id, since=datetime.now(UTC) - RECENT, allowed=caller.readable
    )
    return StatsResponse(
        total_messages=sum(s.count for s in summaries),
        unique_topics=len(summaries),
        recent_messages=sum(s.count for s in recent),
        topic_counts={s.topic: s.count for s in summaries},
        active_subscriptions=service.subscription_count(caller.organization_id),
        mqtt_connected=service.broker_connected,
        websocket_connections=service.live.count(caller.organization_id),
        uptime=round(time.time() - service.started_at, 3),
    )
