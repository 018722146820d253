"""Telemetry's live events and the fan-out that carries them to ``/api/v1/stream`` and Socket.IO.

The ingest writer publishes an :class:`Event` right after the batch holding it commits. Topics are the
device topics as a device of the organization names them (``devices/{id}/datastream``,
``device/{id}/telemetry/{sensor}``, ``devices/{id}/status``, ``devices/{id}/alerts``,
``devices/{id}/commands``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from mqtthub.realtime.fanout import DEFAULT_QUEUE_SIZE, FanOut


class EventJson(TypedDict):
    """A live event as WebSocket and Socket.IO clients receive it."""

    event: str
    topic: str
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Event:
    """One live event: ``type`` is datastream, telemetry, status, alert or command."""

    organization_id: str
    type: str
    topic: str
    data: Mapping[str, Any]

    def to_json(self) -> EventJson:
        """The JSON object sent to WebSocket clients."""
        return {"event": self.type, "topic": self.topic, "data": self.data}


class RealtimeBus(FanOut[Event]):
    """The fan-out of telemetry events (see :class:`~mqtthub.realtime.fanout.FanOut`), named ``stream``."""

    def __init__(self, *, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        super().__init__("stream", queue_size=queue_size)
