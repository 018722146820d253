"""The live fan-out: organization scoping, filters, the feed, permissions, bounded queues, overflow policies."""

from __future__ import annotations

import asyncio

import pytest

from mqtthub.errors import StateError, ValidationFailedError
from mqtthub.realtime import Event, FanOut, OverflowPolicy, RealtimeBus
from mqtthub.realtime.fanout import overflow_policy


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
    keeping_up = bus.subscribe("o", ["#"], maxsize=2, policy=OverflowPolicy.DISCONNECT)
    for n in range(3):
        bus.publish(_event("o", n))
        if n < 2:
            await keeping_up.get()
    assert slow.closed
    assert slow.overflowed
    assert "2 events" in slow.overflow_message
    assert not keeping_up.closed
    assert (await keeping_up.get()).data == {"n": 2}
    assert bus.count() == 1
    assert (bus.disconnected, bus.dropped) == (1, 0)
    with pytest.raises(StateError):
        await slow.get()


async def test_drops_are_counted_once_per_fanout() -> None:
    fanout: FanOut[Event] = FanOut("test", queue_size=2)
    slow = fanout.subscribe("o", ["#"])
    other = fanout.subscribe("o", ["#"], maxsize=5)
    for n in range(4):
        fanout.publish(_event("o", n))
    assert (slow.dropped, other.dropped, fanout.dropped, fanout.published) == (2, 0, 2, 4)


async def test_feed_followers_and_permissions() -> None:
    fanout: FanOut[Event] = FanOut("test")
    follower = fanout.subscribe("o", None)
    bounded = fanout.subscribe("o", None, allowed=["public/#"])
    own = fanout.subscribe("o", ["live/+"], allowed=["live/#"])
    fanout.publish(_event("o", 1, "public/a"), in_feed=True)
    fanout.publish(_event("o", 2, "private/a"), in_feed=True)
    fanout.publish(_event("o", 3, "live/a"), in_feed=False)
    fanout.publish(_event("o", 4, "live/b"), in_feed=True)
    assert [(await follower.get()).data["n"] for _ in range(follower.qsize())] == [1, 2, 4]
    assert [(await bounded.get()).data["n"] for _ in range(bounded.qsize())] == [1]
    assert [(await own.get()).data["n"] for _ in range(own.qsize())] == [3, 4]
    own.set_filters(None)
    fanout.publish(_event("o", 5, "live/c"), in_feed=False)
    assert own.qsize() == 0


def test_overflow_policies_by_name() -> None:
    assert overflow_policy(None) is OverflowPolicy.DROP_OLDEST
    assert overflow_policy("disconnect") is OverflowPolicy.DISCONNECT
    with pytest.raises(ValidationFailedError, match="drop_oldest, disconnect"):
        overflow_policy("block")


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


async def test_has_listeners_follows_the_organizations_subscribers() -> None:
    bus = RealtimeBus()
    assert not bus.has_listeners("a")
    subscriber = bus.subscribe("a", ["#"])
    assert bus.has_listeners("a")
    assert not bus.has_listeners("b")
    subscriber.close()
    assert not bus.has_listeners("a")
    assert bus.count() == 0


@pytest.mark.parametrize("bad", ["", "a/#/b", "a+", "$SYS/#", "x" * 0])
def test_invalid_filters_are_refused(bad: str) -> None:
    with pytest.raises(ValidationFailedError):
        RealtimeBus().subscribe("o", [bad])


def test_too_many_filters() -> None:
    with pytest.raises(ValidationFailedError):
        RealtimeBus().subscribe("o", [f"t/{n}" for n in range(100)])


def test_event_json() -> None:
    assert _event("o", 1).to_json() == {"event": "datastream", "topic": "devices/d1/datastream", "data": {"n": 1}}
