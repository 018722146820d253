"""The live event bus: organization scoping, topic filters, bounded queues and overflow policies."""

from __future__ import annotations

import asyncio

import pytest

from mqtthub.errors import StateError, ValidationFailedError
from mqtthub.realtime import Event, OverflowPolicy, RealtimeBus


def _event(org: str, n: int = 0, topic: str = "devices/d1/datastream") -> Event:
    return Event(org, "datastream", topic, {"n": n})


async def test_only_own_organization_and_matching_filters() -> None:
    bus = RealtimeBus()
    mine = bus.subscribe("org-a", ["devices/+/datastream"])
    status_only = bus.subscribe("org-a", ["devices/d1/status"])
    theirs = bus.subscribe("org-b", ["#"])
    bus.publish(_event("org-a", 1))
    assert (await mine.get()).data == {"n": 1}
    assert status_only.qsize() == 0
    assert theirs.qsize() == 0
    bus.publish(_event("org-b", 2))
    assert (await theirs.get()).data == {"n": 2}
    assert mine.qsize() == 0


async def test_drop_oldest_counts_what_was_lost() -> None:
    bus = RealtimeBus()
    slow = bus.subscribe("o", ["#"], maxsize=3)
    for n in range(10):
        bus.publish(_event("o", n))
    assert slow.qsize() == 3
    assert [(await slow.get()).data["n"] for _ in range(3)] == [7, 8, 9]
    assert slow.take_dropped() == 7
    assert slow.take_dropped() == 0


async def test_disconnect_policy_closes_the_slow_subscriber() -> None:
    bus = RealtimeBus()
    slow = bus.subscribe("o", ["#"], maxsize=2, policy=OverflowPolicy.DISCONNECT)
    for n in range(3):
        bus.publish(_event("o", n))
    assert slow.closed
    assert bus.subscriber_count == 0
    with pytest.raises(StateError):
        await slow.get()


async def test_a_waiting_reader_is_woken_and_close_ends_iteration() -> None:
    bus = RealtimeBus()
    sub = bus.subscribe("o", ["#"])
    waiter = asyncio.create_task(sub.get())
    await asyncio.sleep(0)
    bus.publish(_event("o", 5))
    assert (await asyncio.wait_for(waiter, 5)).data == {"n": 5}
    received = []

    async def read_all() -> None:
        async for event in sub:
            received.append(event)

    reader = asyncio.create_task(read_all())
    bus.publish(_event("o", 6))
    await asyncio.sleep(0.01)
    sub.close()
    await asyncio.wait_for(reader, 5)
    assert [event.data["n"] for event in received] == [6]
    sub.close()


async def test_subscribe_all_sees_the_organizations_it_is_interested_in() -> None:
    bus = RealtimeBus()
    assert not bus.has_listeners("a")
    everything = bus.subscribe_all(interest=lambda org: org != "c")
    assert bus.has_listeners("a")
    assert not bus.has_listeners("c")
    bus.publish(_event("a"))
    bus.publish(_event("c"))
    bus.publish(_event("b"))
    assert [(await everything.get()).organization_id for _ in range(2)] == ["a", "b"]
    assert everything.qsize() == 0
    everything.close()
    assert bus.subscriber_count == 0
    assert not bus.has_listeners("a")
    bus.subscribe("c", ["#"])
    assert bus.has_listeners("c")


@pytest.mark.parametrize("bad", ["", "a/#/b", "a+", "$SYS/#", "x" * 0])
def test_invalid_filters_are_refused(bad: str) -> None:
    with pytest.raises(ValidationFailedError):
        RealtimeBus().subscribe("o", [bad])


def test_too_many_filters() -> None:
    with pytest.raises(ValidationFailedError):
        RealtimeBus().subscribe("o", [f"t/{n}" for n in range(100)])


def test_event_json() -> None:
    assert _event("o", 1).to_json() == {"event": "datastream", "topic": "devices/d1/datastream", "data": {"n": 1}}
