"""Coalesced lookups: one query in flight, concurrent keys share it, failures reach every waiter."""

from __future__ import annotations

import asyncio

import pytest

from mqtthub.auth.batching import BatchLookup


class Store:
    """A fetch function that records its batches and can be held open."""

    def __init__(self, values: dict[str, int]) -> None:
        self.values = values
        self.batches: list[list[str]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail: Exception | None = None

    async def fetch(self, keys: list[str]) -> dict[str, int]:
        self.batches.append(keys)
        await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return {key: self.values[key] for key in keys if key in self.values}


async def test_keys_asked_together_share_one_query() -> None:
    store = Store({"a": 1, "b": 2})
    lookup = BatchLookup(store.fetch, name="test")
    results = list(await asyncio.gather(lookup.get("a"), lookup.get("b"), lookup.get("a"), lookup.get("missing")))
    assert results == [1, 2, 1, None]
    assert store.batches == [["a", "b", "missing"]]
    assert lookup.queries == 1


async def test_keys_asked_during_a_query_wait_for_the_next_one() -> None:
    store = Store({"a": 1, "b": 2, "c": 3})
    store.gate.clear()
    lookup = BatchLookup(store.fetch, name="test")
    first = asyncio.ensure_future(lookup.get("a"))
    await asyncio.sleep(0.01)
    later = [asyncio.ensure_future(lookup.get(key)) for key in ("b", "c")]
    await asyncio.sleep(0.01)
    assert store.batches == [["a"]]  # one query in flight, not three
    store.gate.set()
    assert [await first, *[await f for f in later]] == [1, 2, 3]
    assert store.batches == [["a"], ["b", "c"]]


async def test_batches_are_bounded() -> None:
    store = Store({str(n): n for n in range(5)})
    lookup = BatchLookup(store.fetch, name="test", max_batch=2)
    assert await asyncio.gather(*(lookup.get(str(n)) for n in range(5))) == list(range(5))
    assert [len(batch) for batch in store.batches] == [2, 2, 1]


async def test_a_failed_query_fails_its_waiters_and_the_next_one_runs() -> None:
    store = Store({"a": 1})
    store.fail = RuntimeError("database down")
    lookup = BatchLookup(store.fetch, name="test")
    results = await asyncio.gather(lookup.get("a"), lookup.get("a"), return_exceptions=True)
    assert [str(result) for result in results] == ["database down"] * 2
    store.fail = None
    assert await lookup.get("a") == 1


async def test_a_waiter_going_away_does_not_cancel_the_answer_for_others() -> None:
    store = Store({"a": 1})
    store.gate.clear()
    lookup = BatchLookup(store.fetch, name="test")
    leaving = asyncio.ensure_future(lookup.get("a"))
    staying = asyncio.ensure_future(lookup.get("a"))
    await asyncio.sleep(0.01)
    leaving.cancel()
    store.gate.set()
    assert await staying == 1
    with pytest.raises(asyncio.CancelledError):
        await leaving


def test_the_batch_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        BatchLookup(Store({}).fetch, name="test", max_batch=0)
