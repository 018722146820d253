"""Typed answers of the hub's telemetry endpoints (document 001's camelCase field names, snake_case attributes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AliasGenerator, BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class _Camel(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, alias_generator=AliasGenerator(to_camel))


class Pagination(_Camel):
    """Where a page is and whether more follow."""

    limit: int
    offset: int
    has_more: bool


class Command(_Camel):
    """A command sent to a device and its status: ``pending``, ``delivered``, ``completed`` or ``failed``."""

    command_id: str
    device_id: str
    organization_id: str
    command: str
    parameters: dict[str, Any] = {}
    status: str
    result: Any = None
    error: str | None = None
    created_at: datetime
    delivered_at: datetime | None = None
    completed_at: datetime | None = None


class CommandPage(_Camel):
    """A page of a device's commands, newest first."""

    data: list[Command]
    pagination: Pagination


class DeviceStatus(_Camel):
    """A device's last reported status and whether it is connected now."""

    device_id: str
    status: str
    online: bool
    connected: bool = False
    last_seen: datetime | None = None
    battery: float | None = None
    signal: float | None = None
    metadata: dict[str, Any] = {}


class ReadingPage(_Camel):
    """A page of readings (or per-bucket aggregates), newest first; rows as the hub sends them."""

    data: list[dict[str, Any]]
    pagination: Pagination


class Broadcast(_Camel):
    """A broadcast sent to every device of an organization."""

    broadcast_id: str
    topic: str
    timestamp: datetime
