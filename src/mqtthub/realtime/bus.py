"""Telemetry's live events and the fan-out that carries them to ``/api/v1/stream`` and Socket.IO.

The ingest writer publishes an :class:`Event` right after the batch holding it commits. Topics are the
device topics as a device of the organization names them (``devices/{id}/datastream``,
``device/{id}/telemetry/{sensor}``, ``devices/{id}/status``, ``devices/{id}/alerts``,
``devices/{id}/commands``).

With several hubs (external broker mode) each reading is stored by one of them, so each hub also hands its events
to an :class:`EventRelay`, which carries them to the other hubs; they come back there through
:meth:`RealtimeBus.receive` and reach that hub's own clients. A hub follows an organization's events from the
others only while one of its own clients listens to that organization.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypedDict

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


class EventRelay(Protocol):
    """Carries a hub's events to the other hubs of a deployment, and theirs to it, and counts them."""

    @property
    def sent(self) -> int:
        """Events handed to the other hubs."""
        ...

    @property
    def received(self) -> int:
        """Events of the other hubs delivered here."""
        ...

    @property
    def dropped(self) -> int:
        """Events not sent (the relay was down or too far behind)."""
        ...

    def send(self, organization_id: str, event: EventJson) -> None:
        """Hand an event of this hub to the other hubs; never waits."""
        ...

    def follow(self, organization_id: str) -> None:
        """Receive the organization's events from the other hubs (a client of it listens here)."""
        ...

    def unfollow(self, organization_id: str) -> None:
        """Stop receiving them (the organization's last client here left)."""
        ...


class RealtimeBus(FanOut[Event]):
    """The fan-out of telemetry events (see :class:`~mqtthub.realtime.fanout.FanOut`), named ``stream``.

    Args:
        queue_size: Events queued per subscriber unless it asks for another bound.
        relay: Where events go to and come from the other hubs (None: this hub is the only one).
    """

    def __init__(self, *, queue_size: int = DEFAULT_QUEUE_SIZE, relay: EventRelay | None = None) -> None:
        super().__init__("stream", queue_size=queue_size)
        self.relay = relay

    def organization_joined(self, organization_id: str) -> None:
        """Follow the organization's events from the other hubs while a client of it listens here."""
        if self.relay is not None:
            self.relay.follow(organization_id)

    def organization_left(self, organization_id: str) -> None:
        """Stop following them with its last client."""
        if self.relay is not None:
            self.relay.unfollow(organization_id)

    def has_listeners(self, organization_id: str) -> bool:
        """Whether an event of the organization is worth building: always, when other hubs may listen."""
        return self.relay is not None or super().has_listeners(organization_id)

    def publish(self, event: Event, *, in_feed: bool = True) -> None:
        """Hand an event of this hub to its subscribers and to the other hubs; never waits."""
        super().publish(event, in_feed=in_feed)
        if self.relay is not None:
            self.relay.send(event.organization_id, event.to_json())

    def receive(self, organization_id: str, event: Mapping[str, Any]) -> bool:
        """Hand an event another hub published (its :class:`EventJson`) to this hub's subscribers.

        Returns:
            False, and nothing is delivered, when it is not an event's JSON.
        """
        kind, topic, data = event.get("event"), event.get("topic"), event.get("data")
        if not isinstance(kind, str) or not isinstance(topic, str) or not isinstance(data, Mapping):
            return False
        super().publish(Event(organization_id, kind, topic, data))
        return True
