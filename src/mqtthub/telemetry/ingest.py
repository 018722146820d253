"""What flows through the ingest writer: one :class:`Ingest` per device message or device event.

:func:`from_message` is the single entry for device messages, whichever transport
carried them (MQTT via the sink, HTTP via the device endpoints): it parses and validates
the payload and records the problem, if any, so the store writes it to the rejected-message
log in the same batch.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Final

from mqtthub.realtime import Event
from mqtthub.telemetry.parsing import (
    CommandReply,
    DatastreamReading,
    PayloadError,
    SensorReading,
    StatusReport,
    decode_json,
    parse_command_reply,
    parse_datastream,
    parse_sensor,
    parse_status,
)
from mqtthub.telemetry.routing import Route
from mqtthub.telemetry.schemas import StoredJson


class IngestKind(enum.StrEnum):
    """Device messages (one per :class:`Route`) and the device events the hub records itself."""

    DATASTREAM = Route.DATASTREAM.value
    STATUS = Route.STATUS.value
    TELEMETRY = Route.TELEMETRY.value
    COMMAND_REPLY = Route.COMMAND_REPLY.value
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    COMMAND_DELIVERED = "command_delivered"


class Source:
    """Where an item came from (plain strings: they go into ``telemetry_values.source`` as they are)."""

    MQTT: Final = "mqtt"
    HTTP: Final = "http"
    BROKER: Final = "broker"


Body = DatastreamReading | StatusReport | SensorReading | CommandReply


@dataclass(slots=True)
class Ingest:
    """One item for the ingest writer, and (after its batch) what became of it."""

    kind: IngestKind
    device_id: str
    source: str
    received_ms: int
    short_id: str | None = None
    """The namespace an MQTT message arrived in; the device must belong to that organization."""
    organization_id: str | None = None
    """The organization of an authenticated HTTP device, when known."""
    topic: str = ""
    payload: bytes = b""
    body: Body | None = None
    error: PayloadError | None = None
    command_id: str | None = None
    from_device: bool = False
    """A message the device sent (as opposed to an event the hub observed about it)."""
    # Filled in by the store for the batch that wrote the item:
    rejection: PayloadError | None = None
    events: list[Event] = field(default_factory=list)
    stored: StoredJson | None = None


_KIND_OF_ROUTE: dict[str, IngestKind] = {
    Route.DATASTREAM: IngestKind.DATASTREAM,
    Route.STATUS: IngestKind.STATUS,
    Route.TELEMETRY: IngestKind.TELEMETRY,
    Route.COMMAND_REPLY: IngestKind.COMMAND_REPLY,
}


def _parse(kind: IngestKind, sensor: str | None, document: Any) -> Body:
    if kind is IngestKind.DATASTREAM:
        return parse_datastream(document)
    if kind is IngestKind.STATUS:
        return parse_status(document)
    if kind is IngestKind.TELEMETRY:
        return parse_sensor(sensor or "", document)
    return parse_command_reply(document)


def from_message(
    route: Route,
    device_id: str,
    payload: bytes,
    *,
    source: str,
    received_ms: int,
    topic: str,
    sensor: str | None = None,
    short_id: str | None = None,
    organization_id: str | None = None,
) -> Ingest:
    """An item for a device message, parsed and validated; ``error`` is set when it is invalid."""
    kind = _KIND_OF_ROUTE[route]
    item = Ingest(
        kind,
        device_id,
        source,
        received_ms,
        short_id=short_id,
        organization_id=organization_id,
        topic=topic,
        payload=payload,
        from_device=True,
    )
    try:
        item.body = _parse(kind, sensor, decode_json(payload))
    except PayloadError as exc:
        item.error = exc
    return item
