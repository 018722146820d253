"""Request and response bodies of the telemetry endpoints, and the JSON shapes of what telemetry stores.

The shapes of readings, statuses, commands and alerts are ``TypedDict``: the same dictionaries are built
on the ingest path for live events (no model is constructed per reading there) and returned by the
endpoints, whose response models (:class:`Ok`, :class:`Page`) wrap them in document 001's
``{"success": true, "data": …}`` envelope. Field names are document 001's camelCase.
"""

from __future__ import annotations

from typing import Any, Generic, NotRequired, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from typing_extensions import TypedDict

from mqtthub.models import TelemetryDefinition

T = TypeVar("T")


class _Body(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")


class DefinitionCreate(_Body):
    """A new telemetry definition: ``key`` is the sensor name readings are stored under."""

    key: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$")
    name: str = Field("", max_length=200)
    unit: str = Field("", max_length=32)
    min_threshold: float | None = Field(None, alias="minThreshold")
    max_threshold: float | None = Field(None, alias="maxThreshold")

    @model_validator(mode="after")
    def _ordered(self) -> DefinitionCreate:
        low, high = self.min_threshold, self.max_threshold
        if low is not None and high is not None and low > high:
            raise ValueError("minThreshold must not be greater than maxThreshold")
        return self


class DefinitionUpdate(_Body):
    """Changes to a telemetry definition; omitted fields stay, ``null`` thresholds are removed."""

    name: str | None = Field(None, max_length=200)
    unit: str | None = Field(None, max_length=32)
    min_threshold: float | None = Field(None, alias="minThreshold")
    max_threshold: float | None = Field(None, alias="maxThreshold")


class CommandCreate(_Body):
    """A command for a device (document 001's command message, without the token)."""

    command: str = Field(min_length=1, max_length=100)
    parameters: dict[str, Any] = Field(default_factory=dict)


class BroadcastCreate(_Body):
    """A message for every device of an organization."""

    message: Any = Field(description="Any JSON value but null; devices receive it as the `message` field.")
    qos: int = Field(1, ge=0, le=2)

    @field_validator("message")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("a broadcast needs a message")
        return value


# --- JSON shapes (live events and responses) ------------------------------------------------------


class DatastreamJson(TypedDict):
    """A stored datastream value; ``value`` is the raw text when it is not a number."""

    deviceId: str
    telemetryDataId: int
    key: str
    unit: str
    value: float | str
    rawValue: str
    urgent: bool
    timestamp: str
    receivedAt: str
    source: str


class SensorJson(TypedDict):
    """A stored sensor message (``device/{id}/telemetry/{sensor}``): its number, if any, and the whole payload."""

    deviceId: str
    sensor: str
    value: float | None
    payload: Any
    timestamp: str
    source: str


class StatusAck(TypedDict):
    """A stored status message, as ``POST …/status`` answers it."""

    deviceId: str
    status: str


class StatusJson(TypedDict):
    """A device's last status as live events show it (``unknown`` before the first one)."""

    deviceId: str
    status: str
    online: bool
    lastSeen: str | None
    battery: float | None
    signal: float | None
    metadata: dict[str, Any]
    statusAt: str | None
    connectedAt: str | None
    disconnectedAt: str | None


class DeviceStatusJson(StatusJson):
    """A device's status as ``GET …/status`` shows it: with ``connected``, whether it is connected to this hub now."""

    connected: bool


class CommandJson(TypedDict):
    """A command and its status: ``pending``, ``delivered``, ``completed`` or ``failed``."""

    id: str
    commandId: str
    deviceId: str
    organizationId: str
    command: str
    parameters: dict[str, Any]
    status: str
    result: Any
    error: str | None
    createdAt: str | None
    deliveredAt: str | None
    completedAt: str | None


StoredJson = DatastreamJson | SensorJson | StatusAck | CommandJson
"""What an HTTP device message answers: the JSON of what was stored."""


class AlertJson(TypedDict):
    """An alert: ``kind`` is ``urgent``, ``below_min`` or ``above_max``; ``min``/``max`` the thresholds applied."""

    id: str
    deviceId: str
    telemetryDataId: int | None
    sensor: str
    kind: str
    value: float | None
    rawValue: str
    min: float | None
    max: float | None
    createdAt: str


class ReadingJson(TypedDict):
    """A stored reading in history; ``payload`` (the whole message) only for sensor messages without a definition."""

    id: int
    deviceId: str
    sensor: str
    telemetryDataId: int | None
    value: float | str
    rawValue: str
    urgent: bool
    source: str
    timestamp: str
    receivedAt: str
    payload: NotRequired[Any]


class AggregateJson(TypedDict):
    """Min, max, average and count of one sensor's numeric readings in one time bucket."""

    bucket: str
    bucketMs: int
    sensor: str
    min: float | None
    max: float | None
    avg: float | None
    count: int
    readings: int


class DefinitionJson(TypedDict):
    """A telemetry definition; ``id`` is the ``telemetryDataId`` devices send."""

    id: int
    telemetryDataId: int
    deviceId: str
    organizationId: str
    key: str
    name: str
    unit: str
    minThreshold: float | None
    maxThreshold: float | None
    createdAt: str


class RejectedJson(TypedDict):
    """A device message that was not stored: which field was wrong and why."""

    id: int
    deviceId: str | None
    source: str
    topic: str
    field: str
    reason: str
    payload: str
    receivedAt: str | None


class BroadcastJson(TypedDict):
    """A published broadcast: its id, the topic devices subscribe to, and when it was sent."""

    broadcastId: str
    topic: str
    timestamp: str


class TelemetryStats(TypedDict):
    """Ingestion counters of this hub since it started."""

    stored: dict[str, int]
    rejected: int
    rejectedByField: dict[str, int]
    offered: int
    queued: int
    batches: int
    written: int
    droppedQos0: int
    failed: int
    publisherPauses: int
    refusedByDatabase: int
    releasedAfterHoldTimeout: int
    databaseOutages: int
    liveSubscribers: int


class IngestHealth(TypedDict):
    """The ``ingest`` component of ``/health``; the outage fields only while database writes fail."""

    status: str
    heldItems: int
    reason: NotRequired[str]
    code: NotRequired[str | None]
    since: NotRequired[str]
    failedAttempts: NotRequired[int]


class Pagination(TypedDict):
    """Where a page is and whether more follow."""

    limit: int
    offset: int
    hasMore: bool


# --- response envelopes -------------------------------------------------------------------------------


class Ok(BaseModel, Generic[T]):
    """Document 001's answer: ``{"success": true, "data": …}``."""

    success: bool = True
    data: T


class Page(BaseModel, Generic[T]):
    """A page of a list, newest first, with where it is and whether more follow."""

    success: bool = True
    data: list[T]
    pagination: Pagination

    @classmethod
    def of(cls, rows: list[T], limit: int, offset: int) -> Page[T]:
        """The first ``limit`` of ``rows``, fetched ``limit + 1`` to learn whether more follow."""
        return cls(data=rows[:limit], pagination={"limit": limit, "offset": offset, "hasMore": len(rows) > limit})


def definition_json(definition: TelemetryDefinition) -> DefinitionJson:
    """A telemetry definition as the API shows it; ``id`` is the ``telemetryDataId`` devices send."""
    return {
        "id": definition.id,
        "telemetryDataId": definition.id,
        "deviceId": definition.device_id,
        "organizationId": definition.organization_id,
        "key": definition.key,
        "name": definition.name,
        "unit": definition.unit,
        "minThreshold": definition.min_threshold,
        "maxThreshold": definition.max_threshold,
        "createdAt": definition.created_at.isoformat(),
    }
