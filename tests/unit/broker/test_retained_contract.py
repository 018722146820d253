"""The contract every RetainedStore implementation must meet (one suite, run against each)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mqtthub.broker.hooks import BrokerMessage
from mqtthub.broker.retained import InMemoryRetainedStore, RetainedStore

IMPLEMENTATIONS: list[Callable[[], RetainedStore]] = [InMemoryRetainedStore]


@pytest.fixture(params=IMPLEMENTATIONS, ids=lambda factory: factory.__name__)
def store(request: pytest.FixtureRequest) -> RetainedStore:
    factory: Callable[[], RetainedStore] = request.param
    return factory()


def topics(store: RetainedStore, topic_filter: str) -> list[str]:
    return sorted(message.topic for message in store.matching(topic_filter))


def test_set_replace_and_clear(store: RetainedStore) -> None:
    store.set(BrokerMessage("a/b", b"1", retain=True))
    store.set(BrokerMessage("a/b", b"2", retain=True))
    assert [m.payload for m in store.matching("a/b")] == [b"2"]
    assert len(store) == 1
    store.set(BrokerMessage("a/b", b"", retain=True))
    assert len(store) == 0
    assert topics(store, "#") == []


def test_wildcards_and_dollar_topics(store: RetainedStore) -> None:
    for topic in ("a/b", "a/c/d", "x", "$SYS/uptime", "org/1/a/b"):
        store.set(BrokerMessage(topic, b"v", retain=True))
    assert topics(store, "a/+") == ["a/b"]
    assert topics(store, "a/#") == ["a/b", "a/c/d"]
    assert topics(store, "#") == ["a/b", "a/c/d", "org/1/a/b", "x"]
    assert topics(store, "$SYS/#") == ["$SYS/uptime"]
    assert topics(store, "org/1/#") == ["org/1/a/b"]
    assert topics(store, "missing") == []
