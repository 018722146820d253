"""Queries on the message history table; services flush, the caller's session commits.

Wildcard queries narrow the rows in SQL by the filter's literal prefix and match the rest
with the MQTT matching rules in Python; an organization's history is bounded by
``max_history_size``, which bounds that work too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mqtthub.models.messaging import HistoryMessage
from mqtthub.mqtt.topics import topic_matches


@dataclass(frozen=True, slots=True)
class MessagePage:
    """Rows of one page and how many rows match in all."""

    rows: list[HistoryMessage]
    total: int


@dataclass(frozen=True, slots=True)
class TopicSummary:
    """A topic of the history with its message count and newest message time."""

    topic: str
    count: int
    last_at: datetime


def _like_prefix(topic_filter: str) -> str:
    literal = topic_filter.split("+", 1)[0].split("#", 1)[0]
    escaped = literal.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def _conditions(
    organization_id: str, topic: str | None, since: datetime | None, until: datetime | None
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [HistoryMessage.organization_id == organization_id]
    if topic is not None:
        if "+" in topic or "#" in topic:
            conditions.append(HistoryMessage.topic.like(_like_prefix(topic), escape="\\"))
        else:
            conditions.append(HistoryMessage.topic == topic)
    if since is not None:
        conditions.append(HistoryMessage.received_at >= since)
    if until is not None:
        conditions.append(HistoryMessage.received_at <= until)
    return conditions


_NEWEST_FIRST = (HistoryMessage.received_at.desc(), HistoryMessage.id.desc())


def _readable(allowed: Sequence[str] | None, topic: str) -> bool:
    return allowed is None or any(topic_matches(readable, topic) for readable in allowed)


async def page(
    session: AsyncSession,
    organization_id: str,
    *,
    topic: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
    allowed: Sequence[str] | None = None,
) -> MessagePage:
    """Messages of an organization, newest first.

    Args:
        session: The request's session.
        organization_id: Whose history.
        topic: A topic name or a filter (``+``/``#``), namespace-relative.
        since: Only messages received at or after this time.
        until: Only messages received at or before this time.
        limit: Page size.
        offset: Messages skipped before the page.
        allowed: Filters bounding what the caller may read (None: everything).
    """
    conditions = _conditions(organization_id, topic, since, until)
    wildcard = topic is not None and ("+" in topic or "#" in topic)
    if wildcard or allowed is not None:
        candidates = (await session.scalars(select(HistoryMessage).where(*conditions).order_by(*_NEWEST_FIRST))).all()
        matching = [
            row
            for row in candidates
            if (not wildcard or topic_matches(str(topic), row.topic)) and _readable(allowed, row.topic)
        ]
        return MessagePage(rows=matching[offset : offset + limit], total=len(matching))
    total = await session.scalar(select(func.count()).select_from(HistoryMessage).where(*conditions)) or 0
    rows = await session.scalars(
        select(HistoryMessage).where(*conditions).order_by(*_NEWEST_FIRST).limit(limit).offset(offset)
    )
    return MessagePage(rows=list(rows), total=total)


async def topics(
    session: AsyncSession, organization_id: str, *, since: datetime | None = None, allowed: Sequence[str] | None = None
) -> list[TopicSummary]:
    """The topics in an organization's history (received at or after ``since``), the busiest first."""
    result = await session.execute(
        select(HistoryMessage.topic, func.count(), func.max(HistoryMessage.received_at))
        .where(*_conditions(organization_id, None, since, None))
        .group_by(HistoryMessage.topic)
        .order_by(func.count().desc(), HistoryMessage.topic)
    )
    return [
        TopicSummary(topic, int(count), last_at) for topic, count, last_at in result.all() if _readable(allowed, topic)
    ]


async def count_all(session: AsyncSession) -> int:
    """Messages in the history of every organization."""
    return await session.scalar(select(func.count()).select_from(HistoryMessage)) or 0


async def prune(session: AsyncSession, *, max_per_organization: int, older_than: datetime) -> int:
    """Delete messages received before ``older_than`` and all but the newest ``max_per_organization`` per
    organization; return how many were deleted."""
    expired = await session.execute(delete(HistoryMessage).where(HistoryMessage.received_at < older_than))
    deleted = cast(CursorResult[Any], expired).rowcount
    crowded = await session.scalars(
        select(HistoryMessage.organization_id)
        .group_by(HistoryMessage.organization_id)
        .having(func.count() > max_per_organization)
    )
    for organization_id in crowded.all():
        surplus = (
            select(HistoryMessage.id)
            .where(HistoryMessage.organization_id == organization_id)
            .order_by(*_NEWEST_FIRST)
            .offset(max_per_organization)
            .scalar_subquery()
        )
        result = await session.execute(delete(HistoryMessage).where(HistoryMessage.id.in_(surplus)))
        deleted += cast(CursorResult[Any], result).rowcount
    return int(deleted or 0)


def retention_cutoff(now: datetime, retention_hours: float) -> datetime:
    """The oldest receive time kept under a retention of ``retention_hours``."""
    return now - timedelta(hours=retention_hours)
