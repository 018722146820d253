"""SubscriptionTrie, shared groups and retained-filter matching."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mqtthub.broker.hooks import BrokerMessage
from mqtthub.broker.retained import InMemoryRetainedStore
from mqtthub.broker.session import EncodeCache, Outgoing
from mqtthub.broker.subscriptions import Subscription, SubscriptionTrie


@dataclass(eq=False)
class Member:
    name: str
    online: bool = True

    def deliver(self, out: Outgoing, cache: EncodeCache | None = None) -> None:
        raise AssertionError("the index never delivers")


def subscribers(trie: SubscriptionTrie, topic: str) -> set[str]:
    return {target.subscriber.name for target in trie.match(topic).targets}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        ("a/b", "a/b", True),
        ("a/b", "a/c", False),
        ("a/+", "a/b", True),
        ("a/+", "a/b/c", False),
        ("a/#", "a", True),
        ("a/#", "a/b/c", True),
        ("#", "a/b", True),
        ("+/+", "/x", True),
        ("+", "$SYS", False),
        ("#", "$SYS/broker/uptime", False),
        ("$SYS/#", "$SYS/broker/uptime", True),
        ("a/+/c", "a//c", True),
    ],
)
def test_match(topic_filter: str, topic: str, expected: bool) -> None:
    trie = SubscriptionTrie()
    trie.add(Subscription(Member("m"), topic_filter))
    assert (subscribers(trie, topic) == {"m"}) is expected
    store = InMemoryRetainedStore()
    store.set(BrokerMessage(topic, b"x", retain=True))
    assert bool(list(store.matching(topic_filter))) is expected


def test_overlapping_subscriptions_fold_into_one_target() -> None:
    trie = SubscriptionTrie()
    member = Member("m")
    trie.add(Subscription(member, "a/+", qos=0, identifier=1))
    trie.add(Subscription(member, "a/#", qos=2, identifier=2))
    (target,) = trie.match("a/b").targets
    assert target.qos == 2
    assert sorted(target.identifiers) == [1, 2]


def test_cache_is_invalidated_on_change_and_empty_nodes_pruned() -> None:
    trie = SubscriptionTrie()
    first, second = Member("first"), Member("second")
    trie.add(Subscription(first, "x/#"))
    assert subscribers(trie, "x/y") == {"first"}
    trie.add(Subscription(second, "x/y"))
    assert subscribers(trie, "x/y") == {"first", "second"}
    assert trie.remove(first, "x/#") is not None
    assert trie.remove(first, "x/#") is None
    assert subscribers(trie, "x/y") == {"second"}
    trie.remove(second, "x/y")
    assert len(trie) == 0
    assert list(trie.subscriptions()) == []


def test_replacing_a_subscription_keeps_one() -> None:
    trie = SubscriptionTrie()
    member = Member("m")
    assert trie.add(Subscription(member, "a/#", qos=0)) is False
    assert trie.add(Subscription(member, "a/#", qos=1)) is True
    assert len(trie) == 1
    assert trie.match("a/b").targets[0].qos == 1


def test_shared_group_round_robin_prefers_online_members() -> None:
    trie = SubscriptionTrie()
    members = [Member("a"), Member("b"), Member("c")]
    for member in members:
        trie.add(Subscription(member, "jobs/#", share_group="workers"))
    result = trie.match("jobs/1")
    assert result.targets == ()
    (group,) = result.groups
    picks = [group.pick() for _ in range(6)]
    assert [p.subscriber.name for p in picks if p is not None] == ["a", "b", "c", "a", "b", "c"]  # type: ignore[attr-defined]
    members[1].online = False
    names = {group.pick().subscriber.name for _ in range(4)}  # type: ignore[union-attr]
    assert names == {"a", "c"}
    picked = group.pick(exclude=members[0])
    assert picked is not None
    assert picked.subscriber is members[2]


def test_shared_groups_are_separate_by_name_and_filter() -> None:
    trie = SubscriptionTrie()
    trie.add(Subscription(Member("a"), "t/#", share_group="g1"))
    trie.add(Subscription(Member("b"), "t/#", share_group="g2"))
    trie.add(Subscription(Member("c"), "t/+", share_group="g1"))
    assert len(trie.match("t/x").groups) == 3
    assert trie.group("t/#", "g1") is not None
    assert trie.remove(Member("z"), "t/#", "g1") is None


def test_empty_retained_payload_clears() -> None:
    store = InMemoryRetainedStore()
    store.set(BrokerMessage("a/b", b"x", retain=True))
    store.set(BrokerMessage("a/b", b"", retain=True))
    assert len(store) == 0
