"""The live bus with a relay to other hubs: what it sends, what it follows, and what it receives from them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mqtthub.realtime import Event, RealtimeBus
from mqtthub.realtime.bus import EventJson


class RecordingRelay:
    """A relay that keeps what the bus asked of it (the one seam faked here)."""

    received = 0
    dropped = 0

    def __init__(self) -> None:
        self.events: list[tuple[str, EventJson]] = []
        self.following: list[str] = []
        self.calls: list[tuple[str, str]] = []

    @property
    def sent(self) -> int:
        return len(self.events)

    def send(self, organization_id: str, event: EventJson) -> None:
        self.events.append((organization_id, event))

    def follow(self, organization_id: str) -> None:
        self.following.append(organization_id)
        self.calls.append(("follow", organization_id))

    def unfollow(self, organization_id: str) -> None:
        self.following.remove(organization_id)
        self.calls.append(("unfollow", organization_id))


def test_an_organization_is_followed_from_its_first_subscriber_to_its_last() -> None:
    relay = RecordingRelay()
    bus = RealtimeBus(relay=relay)
    first = bus.subscribe("org-a", ["#"])
    second = bus.subscribe("org-a", None)
    other = bus.subscribe("org-b", ["#"])
    assert relay.calls == [("follow", "org-a"), ("follow", "org-b")]
    first.close()
    assert relay.following == ["org-a", "org-b"]
    second.close()
    second.close()
    assert relay.following == ["org-b"]
    other.close()
    assert relay.calls[-2:] == [("unfollow", "org-a"), ("unfollow", "org-b")]


async def test_own_events_go_to_local_subscribers_and_the_relay_received_ones_to_local_subscribers_only() -> None:
    relay = RecordingRelay()
    bus = RealtimeBus(relay=relay)
    subscriber = bus.subscribe("org-a", ["devices/+/datastream"])
    own = Event("org-a", "datastream", "devices/d1/datastream", {"value": 1})
    bus.publish(own)
    assert relay.events == [("org-a", own.to_json())]
    received: Mapping[str, Any] = {"event": "datastream", "topic": "devices/d2/datastream", "data": {"value": 2}}
    assert bus.receive("org-a", received)
    assert relay.events == [("org-a", own.to_json())]  # not sent back out
    assert await subscriber.get() == own
    assert await subscriber.get() == Event("org-a", "datastream", "devices/d2/datastream", {"value": 2})


def test_received_json_that_is_not_an_event_is_refused() -> None:
    bus = RealtimeBus(relay=RecordingRelay())
    subscriber = bus.subscribe("org-a", ["#"])
    for bad in (
        {"event": "datastream", "topic": 3, "data": {}},
        {"topic": "t", "data": {}},
        {"event": "x", "topic": "t"},
    ):
        assert not bus.receive("org-a", bad)
    assert subscriber.qsize() == 0


def test_events_are_built_for_other_hubs_even_without_a_local_listener() -> None:
    assert not RealtimeBus().has_listeners("org-a")
    assert RealtimeBus(relay=RecordingRelay()).has_listeners("org-a")
