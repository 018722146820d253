"""A device's telemetry definitions (key, name, unit, default thresholds): the one place they are changed.

The API's ``…/telemetry-definitions`` endpoints and the web console call these functions after their own
access checks. A change or deletion is announced with :class:`~mqtthub.telemetry.directory.DefinitionChanged`
once committed, so ingestion applies it from the next message on.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mqtthub.db.changes import record
from mqtthub.errors import ConflictError, NotFoundError, ValidationFailedError
from mqtthub.models import Device, TelemetryDefinition
from mqtthub.telemetry.directory import DefinitionChanged
from mqtthub.telemetry.schemas import DefinitionCreate


async def device_definitions(session: AsyncSession, device_id: str) -> list[TelemetryDefinition]:
    """The device's definitions, oldest first."""
    rows = await session.scalars(
        select(TelemetryDefinition).where(TelemetryDefinition.device_id == device_id).order_by(TelemetryDefinition.id)
    )
    return list(rows)


async def get_definition(session: AsyncSession, device_id: str, definition_id: int) -> TelemetryDefinition:
    """One definition of the device.

    Raises:
        NotFoundError: the device has no definition ``definition_id``.
    """
    definition = await session.get(TelemetryDefinition, definition_id)
    if definition is None or definition.device_id != device_id:
        raise NotFoundError(f"telemetry definition {definition_id} not found")
    return definition


async def create_definition(session: AsyncSession, device: Device, body: DefinitionCreate) -> TelemetryDefinition:
    """A new definition of ``device``; its id is the ``telemetryDataId`` the device sends.

    Raises:
        ConflictError: the device already has a definition with this key.
    """
    definition = TelemetryDefinition(
        organization_id=device.organization_id,
        device_id=device.id,
        key=body.key,
        name=body.name,
        unit=body.unit,
        min_threshold=body.min_threshold,
        max_threshold=body.max_threshold,
    )
    try:
        # Added inside the savepoint, so that a clash rolls back only the savepoint and the session stays usable.
        async with session.begin_nested():
            session.add(definition)
    except IntegrityError:
        raise ConflictError(f"the device already has a telemetry definition {body.key!r}") from None
    return definition


async def update_definition(session: AsyncSession, definition: TelemetryDefinition, changes: dict[str, Any]) -> None:
    """Apply ``changes`` (``name``, ``unit``, ``min_threshold``, ``max_threshold``; a ``None`` name or unit is
    ignored, a ``None`` threshold removes it), effective for the device's next message.

    Raises:
        ValidationFailedError: the minimum would be greater than the maximum.
    """
    for name, value in changes.items():
        if name in ("name", "unit") and value is None:
            continue
        setattr(definition, name, value)
    low, high = definition.min_threshold, definition.max_threshold
    if low is not None and high is not None and low > high:
        raise ValidationFailedError("minThreshold must not be greater than maxThreshold", field="minThreshold")
    await session.flush()
    record(session, DefinitionChanged(definition.id))


async def delete_definition(session: AsyncSession, definition: TelemetryDefinition) -> None:
    """Remove a definition; stored readings stay (their ``telemetryDataId`` is kept in history)."""
    await session.delete(definition)
    await session.flush()
    record(session, DefinitionChanged(definition.id))
