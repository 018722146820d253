"""Subscription index: exact filters in a dict, wildcard filters in a trie, matches cached.

Routing a PUBLISH asks :meth:`SubscriptionTrie.match` for everything that matches its
topic. Exact filters (no ``+``/``#``) are one dict lookup; wildcard filters are found
by walking a trie of topic levels. The answer, already aggregated per subscriber, is
cached per topic and the whole cache is dropped on any change of the index (overflow
policy of the cache: clear when full), so a steady stream of publishes on a stable set
of subscriptions does no matching work at all.

Shared subscriptions (``$share/{group}/{filter}``, [MQTT-4.8.2]) live in the same
index as :class:`SharedGroup` objects; a match lists each group once, and the router
asks the group for one member per message (round-robin, preferring online members).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from mqtthub.broker.session import EncodeCache, Outgoing


class Subscriber(Protocol):
    """Anything that can hold subscriptions: a client session or an in-process consumer."""

    @property
    def online(self) -> bool:
        """Whether messages can be delivered right now (used to pick shared-group members)."""
        ...

    def deliver(self, out: Outgoing, cache: EncodeCache | None = None) -> None:
        """Take one message routed to it (see :meth:`mqtthub.broker.session.Session.deliver`)."""
        ...


@dataclass(slots=True, eq=False)
class Subscription:
    """One subscription of one subscriber. ``topic_filter`` is the internal (mounted) filter."""

    subscriber: Subscriber
    topic_filter: str
    qos: int = 0
    no_local: bool = False
    retain_as_published: bool = False
    retain_handling: int = 0
    identifier: int | None = None
    share_group: str | None = None


@dataclass(slots=True, eq=False)
class Target:
    """What one subscriber gets for one topic: its matching subscriptions folded into one.

    A client with overlapping subscriptions receives a message once, at the highest
    granted QoS, carrying every matching subscription identifier [MQTT-3.3.4-2],
    [MQTT-3.3.4-3].
    """

    subscriber: Subscriber
    qos: int
    no_local: bool
    retain_as_published: bool
    identifiers: tuple[int, ...]


@dataclass(slots=True, eq=False)
class SharedGroup:
    """The members of one ``$share/{name}/{filter}``; each message goes to one of them [MQTT-4.8.2-2]."""

    name: str
    topic_filter: str
    members: dict[Subscriber, Subscription] = field(default_factory=dict)
    _turn: int = 0

    def pick(self, exclude: Subscriber | None = None) -> Subscription | None:
        """Return the next member in round-robin order, preferring online members.

        ``exclude`` skips one member (the one whose unacknowledged messages are being
        re-sent elsewhere). Falls back to an offline member, whose persistent session
        queues the message, when no member is online.
        """
        candidates = [sub for member, sub in self.members.items() if member is not exclude]
        if not candidates:
            return None
        count = len(candidates)
        for step in range(count):
            sub = candidates[(self._turn + step) % count]
            if sub.subscriber.online:
                self._turn = (self._turn + step + 1) % count
                return sub
        sub = candidates[self._turn % count]
        self._turn = (self._turn + 1) % count
        return sub


@dataclass(slots=True, frozen=True)
class MatchResult:
    """Subscribers (aggregated) and shared groups matching one topic."""

    targets: tuple[Target, ...]
    groups: tuple[SharedGroup, ...]


_EMPTY = MatchResult((), ())


class _Node:
    __slots__ = ("children", "groups", "subscriptions")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.subscriptions: dict[Subscriber, Subscription] = {}
        self.groups: dict[str, SharedGroup] = {}

    def is_empty(self) -> bool:
        return not (self.children or self.subscriptions or self.groups)


def is_wildcard(topic_filter: str) -> bool:
    """Whether a filter contains ``+`` or ``#`` [MQTT-4.7.1]."""
    return "+" in topic_filter or "#" in topic_filter


class SubscriptionTrie:
    """The broker's subscription index (see the module docstring).

    Args:
        max_cache_entries: Topics whose match results are kept; the cache is cleared when full.
    """

    def __init__(self, *, max_cache_entries: int = 65_536) -> None:
        self._exact: dict[str, _Node] = {}
        self._root = _Node()
        self._cache: dict[str, MatchResult] = {}
        self._max_cache_entries = max_cache_entries
        self._count = 0

    def __len__(self) -> int:
        """Number of subscriptions (each shared-group membership counts once)."""
        return self._count

    def add(self, subscription: Subscription) -> bool:
        """Add or replace the subscriber's subscription to its filter; True if it replaced one.

        Replacing keeps a single subscription per subscriber and filter [MQTT-3.8.4-3].
        """
        node = self._node_for(subscription.topic_filter, create=True)
        assert node is not None
        if subscription.share_group is None:
            replaced = subscription.subscriber in node.subscriptions
            node.subscriptions[subscription.subscriber] = subscription
        else:
            group = node.groups.get(subscription.share_group)
            if group is None:
                group = node.groups[subscription.share_group] = SharedGroup(
                    subscription.share_group, subscription.topic_filter
                )
            replaced = subscription.subscriber in group.members
            group.members[subscription.subscriber] = subscription
        if not replaced:
            self._count += 1
        self._cache.clear()
        return replaced

    def remove(self, subscriber: Subscriber, topic_filter: str, share_group: str | None = None) -> Subscription | None:
        """Remove one subscription; return it, or None if there was none."""
        node = self._node_for(topic_filter, create=False)
        if node is None:
            return None
        if share_group is None:
            removed = node.subscriptions.pop(subscriber, None)
        else:
            group = node.groups.get(share_group)
            removed = None if group is None else group.members.pop(subscriber, None)
            if group is not None and not group.members:
                del node.groups[share_group]
        if removed is not None:
            self._count -= 1
            self._cache.clear()
            self._prune(topic_filter)
        return removed

    def group(self, topic_filter: str, share_group: str) -> SharedGroup | None:
        """The shared group ``$share/{share_group}/{topic_filter}``, if it has members."""
        node = self._node_for(topic_filter, create=False)
        return None if node is None else node.groups.get(share_group)

    def match(self, topic: str) -> MatchResult:
        """Everything that matches a topic name, honouring the ``$`` rule [MQTT-4.7.2-1]."""
        cached = self._cache.get(topic)
        if cached is not None:
            return cached
        nodes: list[_Node] = []
        exact = self._exact.get(topic)
        if exact is not None:
            nodes.append(exact)
        if self._root.children:
            self._collect(topic.split("/"), topic.startswith("$"), nodes)
        result = _aggregate(nodes) if nodes else _EMPTY
        if len(self._cache) >= self._max_cache_entries:
            self._cache.clear()
        self._cache[topic] = result
        return result

    def subscriptions(self) -> Iterator[Subscription]:
        """Every subscription in the index (for diagnostics and tests)."""
        for node in self._exact.values():
            yield from _node_subscriptions(node)
        stack = [self._root]
        while stack:
            node = stack.pop()
            yield from _node_subscriptions(node)
            stack.extend(node.children.values())

    def _collect(self, levels: list[str], dollar: bool, out: list[_Node]) -> None:
        last = len(levels)
        stack: list[tuple[_Node, int]] = [(self._root, 0)]
        while stack:
            node, index = stack.pop()
            # A wildcard in the first level never matches a topic starting with "$".
            wildcards_allowed = index > 0 or not dollar
            if wildcards_allowed:
                multi = node.children.get("#")
                if multi is not None:
                    out.append(multi)  # "a/#" matches "a" as well as "a/b" [MQTT-4.7.1-2]
            if index == last:
                out.append(node)
                continue
            if wildcards_allowed:
                single = node.children.get("+")
                if single is not None:
                    stack.append((single, index + 1))
            child = node.children.get(levels[index])
            if child is not None:
                stack.append((child, index + 1))

    def _node_for(self, topic_filter: str, *, create: bool) -> _Node | None:
        if not is_wildcard(topic_filter):
            node = self._exact.get(topic_filter)
            if node is None and create:
                node = self._exact[topic_filter] = _Node()
            return node
        node = self._root
        for level in topic_filter.split("/"):
            child = node.children.get(level)
            if child is None:
                if not create:
                    return None
                child = node.children[level] = _Node()
            node = child
        return node

    def _prune(self, topic_filter: str) -> None:
        if not is_wildcard(topic_filter):
            node = self._exact.get(topic_filter)
            if node is not None and node.is_empty():
                del self._exact[topic_filter]
            return
        path: list[tuple[_Node, str]] = []
        node = self._root
        for level in topic_filter.split("/"):
            child = node.children.get(level)
            if child is None:
                return
            path.append((node, level))
            node = child
        for parent, level in reversed(path):
            if not parent.children[level].is_empty():
                return
            del parent.children[level]


def _node_subscriptions(node: _Node) -> Iterator[Subscription]:
    yield from node.subscriptions.values()
    for group in node.groups.values():
        yield from group.members.values()


def _aggregate(nodes: list[_Node]) -> MatchResult:
    targets: dict[Subscriber, Target] = {}
    groups: list[SharedGroup] = []
    for node in nodes:
        groups.extend(node.groups.values())
        for subscriber, sub in node.subscriptions.items():
            ids = (sub.identifier,) if sub.identifier else ()
            target = targets.get(subscriber)
            if target is None:
                targets[subscriber] = Target(subscriber, sub.qos, sub.no_local, sub.retain_as_published, ids)
            else:
                target.qos = max(target.qos, sub.qos)
                target.no_local = target.no_local and sub.no_local
                target.retain_as_published = target.retain_as_published or sub.retain_as_published
                target.identifiers += ids
    return MatchResult(tuple(targets.values()), tuple(groups))
