"""Retained messages [MQTT-3.3.1-5]: a small store interface and its in-memory implementation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from mqtthub.broker.hooks import BrokerMessage
from mqtthub.broker.subscriptions import is_wildcard


class RetainedStore(Protocol):
    """Where the broker keeps the last retained message of each topic (internal, mounted topics)."""

    def set(self, message: BrokerMessage) -> None:
        """Store ``message`` for its topic, or clear the topic if the payload is empty [MQTT-3.3.1-10]."""
        ...

    def matching(self, topic_filter: str) -> Iterator[BrokerMessage]:
        """Retained messages whose topic matches ``topic_filter``."""
        ...

    def __len__(self) -> int:
        """Number of topics with a retained message."""
        ...


class InMemoryRetainedStore:
    """A dict keyed by topic. Wildcard lookups scan the topics sharing the filter's literal prefix level."""

    def __init__(self) -> None:
        self._messages: dict[str, BrokerMessage] = {}

    def set(self, message: BrokerMessage) -> None:
        """See :meth:`RetainedStore.set`."""
        if message.payload:
            self._messages[message.topic] = message
        else:
            self._messages.pop(message.topic, None)

    def matching(self, topic_filter: str) -> Iterator[BrokerMessage]:
        """See :meth:`RetainedStore.matching`."""
        if not is_wildcard(topic_filter):
            message = self._messages.get(topic_filter)
            if message is not None:
                yield message
            return
        filter_levels = topic_filter.split("/")
        for topic, message in list(self._messages.items()):
            if filter_matches(filter_levels, topic):
                yield message

    def __len__(self) -> int:
        """See :meth:`RetainedStore.__len__`."""
        return len(self._messages)


def filter_matches(filter_levels: list[str], topic: str) -> bool:
    """Whether a topic matches a filter already split into levels, with the ``$`` rule [MQTT-4.7.2-1]."""
    levels = topic.split("/")
    if topic.startswith("$") and filter_levels[0] in ("+", "#"):
        return False
    for index, pattern in enumerate(filter_levels):
        if pattern == "#":
            return True
        if index >= len(levels):
            return False
        if pattern != "+" and pattern != levels[index]:
            return False
    return len(levels) == len(filter_levels)
