"""Reading back what ingestion recorded besides readings: alerts and rejected messages, newest first.

The API's list endpoints and the console's device page read them through these functions, so both show the
same rows in the same order.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mqtthub.models import RejectedMessage, TelemetryAlert


async def alerts(
    session: AsyncSession,
    organization_id: str,
    *,
    device_id: str | None = None,
    kind: str | None = None,
    limit: int,
    offset: int = 0,
) -> list[TelemetryAlert]:
    """The organization's alerts (only the device's, only of ``kind``, when given), newest first."""
    statement = select(TelemetryAlert).where(TelemetryAlert.organization_id == organization_id)
    if device_id is not None:
        statement = statement.where(TelemetryAlert.device_id == device_id)
    if kind is not None:
        statement = statement.where(TelemetryAlert.kind == kind)
    ordered = statement.order_by(TelemetryAlert.created_at.desc()).limit(limit).offset(offset)
    return list(await session.scalars(ordered))


async def rejected_messages(
    session: AsyncSession, organization_id: str, *, device_id: str | None = None, limit: int, offset: int = 0
) -> list[RejectedMessage]:
    """Device messages of the organization (only the device's, when given) that were not stored, newest first."""
    statement = select(RejectedMessage).where(RejectedMessage.organization_id == organization_id)
    if device_id is not None:
        statement = statement.where(RejectedMessage.device_id == device_id)
    return list(await session.scalars(statement.order_by(RejectedMessage.id.desc()).limit(limit).offset(offset)))
