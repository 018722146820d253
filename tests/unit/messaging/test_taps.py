"""Broker taps: one broker subscription per organization and filter, shared and counted, and each message
taken once however many of an organization's filters match it."""

from __future__ import annotations

import pytest

from mqtthub.broker.hooks import BrokerMessage
from mqtthub.errors import UnavailableError
from mqtthub.messaging.namespace import OrgScope
from mqtthub.messaging.taps import BrokerTaps
from tests.unit.messaging.fakes import FakeBroker

A = OrgScope.of("org-a", "aaaaaa")
B = OrgScope.of("org-b", "bbbbbb")


def taps_on(broker: FakeBroker) -> tuple[BrokerTaps, list[tuple[str, bytes]]]:
    taken: list[tuple[str, bytes]] = []
    return BrokerTaps(broker, lambda scope, m: taken.append((scope.organization_id, m.payload))), taken


async def test_overlapping_filters_take_a_message_once_per_organization() -> None:
    broker = FakeBroker()
    taps, taken = taps_on(broker)
    for topic_filter in ("a/#", "a/+", "a/b"):
        taps.add(A, topic_filter)
    taps.add(B, "a/#")
    await broker.publish("org/aaaaaa/a/b", b"one")
    await broker.publish("org/aaaaaa/a/b", b"two")
    await broker.publish("org/bbbbbb/a/b", b"theirs")
    assert taken == [("org-a", b"one"), ("org-a", b"two"), ("org-b", b"theirs")]


def test_a_filter_wanted_twice_is_one_broker_subscription_until_the_last_goes() -> None:
    broker = FakeBroker()
    taps, _ = taps_on(broker)
    taps.add(A, "x/#")
    taps.add(A, "x/#")
    assert len(broker.subscriptions) == 1
    taps.discard("org-a", "x/#")
    assert taps.active("org-a", "x/#")
    taps.discard("org-a", "x/#")
    taps.discard("org-a", "x/#")  # one too many is ignored
    assert broker.subscriptions == []
    assert not taps.active("org-a", "x/#")


def test_a_filter_wanted_while_the_broker_is_down() -> None:
    broker = FakeBroker()
    taps, taken = taps_on(broker)
    broker.running = False
    with pytest.raises(UnavailableError):
        taps.add(A, "live/#")
    assert len(taps) == 0
    taps.add(A, "kept/#", required=False)
    assert not taps.active("org-a", "kept/#")
    broker.running = True
    taps.ensure("org-a", "kept/#")
    broker.route(BrokerMessage("org/aaaaaa/kept/1", b"late", received_at=1.0))
    assert taken == [("org-a", b"late")]
    taps.clear()
    assert broker.subscriptions == []
