"""Live listeners: bounded queues that drop the oldest, de-duplication, organization and permission scoping."""

from __future__ import annotations

import asyncio

import pytest

from mqtthub.messaging.live import LiveFeed, LiveListener


async def test_full_queue_drops_oldest() -> None:
    listener = LiveListener("org", max_queued=3)
    for index in range(5):
        listener.put(f"m{index}")
    assert listener.dropped == 2
    assert [await listener.get() for _ in range(3)] == ["m2", "m3", "m4"]


async def test_get_waits_for_a_message() -> None:
    listener = LiveListener("org")
    waiting = asyncio.create_task(listener.get())
    await asyncio.sleep(0)
    assert not waiting.done()
    listener.put("hello")
    assert await asyncio.wait_for(waiting, 5) == "hello"


def test_same_message_through_overlapping_filters_is_queued_once() -> None:
    listener = LiveListener("org")
    first, second = object(), object()
    listener.put("a", first)
    listener.put("a", first)
    listener.put("b", second)
    assert len(listener) == 2


def test_feed_sends_only_to_the_organization_and_readable_topics() -> None:
    feed = LiveFeed()
    mine = LiveListener("org-a")
    limited = LiveListener("org-a", readable=["sensors/#"])
    narrowed = LiveListener("org-a")
    narrowed.narrowed = True
    other = LiveListener("org-b")
    for listener in (mine, limited, narrowed, other):
        feed.attach(listener)
    assert feed.count() == 4
    assert feed.count("org-a") == 3
    feed.send("org-a", "alerts/x", "text-1")
    feed.send("org-a", "sensors/t", "text-2")
    assert (len(mine), len(limited), len(narrowed), len(other)) == (2, 1, 0, 0)
    feed.detach(other)
    feed.detach(other)
    assert feed.count("org-b") == 0


def test_max_queued_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_queued"):
        LiveListener("org", max_queued=0)
