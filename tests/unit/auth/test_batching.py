"""Coalesced lookups: one query in flight, concurrent keys share it, failures reach every waiter."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

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
        self.refuse: Exception | None = None
        self.opened = 0
        self.closed: list[int] = []
        self.connections: list[int] = []

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[int]:
        """Hands out numbered connections; opening fails while ``refuse`` is set."""
        if self.refuse is not None:
            raise self.refuse
        self.opened += 1
        connection = self.opened
        try:
            yield connection
        finally:
            self.closed.append(connection)

    async def fetch(self, connection: int, keys: list[str]) -> dict[str, int]:
        self.batches.append(keys)
        self.connections.append(connection)
        await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return {key: self.values[key] for key in keys if key in self.values}


async def test_keys_asked_together_share_one_query() -> None:
    store = Store({"a": 1, "b": 2})
    lookup = BatchLookup(store.open, store.fetch, name="test")
    results = list(await asyncio.gather(lookup.get("a"), lookup.get("b"), lookup.get("a"), lookup.get("missing")))
    assert results == [1, 2, 1, None]
    assert store.batches == [["a", "b", "missing"]]
    assert lookup.queries == 1


async def test_keys_asked_during_a_query_wait_for_the_next_one() -> None:
    store = Store({"a": 1, "b": 2, "c": 3})
    store.gate.clear()
    lookup = BatchLookup(store.open, store.fetch, name="test")
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
    lookup = BatchLookup(store.open, store.fetch, name="test", max_batch=2)
    assert await asyncio.gather(*(lookup.get(str(n)) for n in range(5))) == list(range(5))
    assert [len(batch) for batch in store.batches] == [2, 2, 1]


async def test_a_failed_query_fails_its_waiters_and_the_next_one_runs() -> None:
    store = Store({"a": 1})
    store.fail = RuntimeError("database down")
    lookup = BatchLookup(store.open, store.fetch, name="test")
    results = await asyncio.gather(lookup.get("a"), lookup.get("a"), return_exceptions=True)
    assert [str(result) for result in results] == ["database down"] * 2
    store.fail = None
    assert await lookup.get("a") == 1


async def test_a_waiter_going_away_does_not_cancel_the_answer_for_others() -> None:
    store = Store({"a": 1})
    store.gate.clear()
    lookup = BatchLookup(store.open, store.fetch, name="test")
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
        BatchLookup(Store({}).open, Store({}).fetch, name="test", max_batch=0)


async def test_a_burst_of_batches_shares_one_connection_given_back_after_the_linger() -> None:
    store = Store({"a": 1, "b": 2, "c": 3})
    lookup = BatchLookup(store.open, store.fetch, name="test", linger=0.2)
    assert await lookup.get("a") == 1
    await asyncio.sleep(0.05)  # a pause shorter than the linger: the connection is still held
    assert await lookup.get("b") == 2
    assert store.connections == [1, 1]
    assert store.closed == []
    await asyncio.sleep(0.3)  # longer than the linger: given back
    assert store.closed == [1]
    assert await lookup.get("c") == 3
    assert store.connections == [1, 1, 2]
    await lookup.settle()  # gives it back at once
    assert store.closed == [1, 2]


async def test_a_failed_query_gives_its_connection_up_for_a_fresh_one() -> None:
    store = Store({"a": 1})
    store.fail = RuntimeError("connection broken")
    lookup = BatchLookup(store.open, store.fetch, name="test")
    with pytest.raises(RuntimeError, match="connection broken"):
        await lookup.get("a")
    store.fail = None
    assert await lookup.get("a") == 1
    assert store.connections == [1, 2]
    assert store.closed[0] == 1
    await lookup.settle()


async def test_waiters_hear_why_no_connection_could_be_had() -> None:
    store = Store({"a": 1})
    store.refuse = ConnectionRefusedError("database down")
    lookup = BatchLookup(store.open, store.fetch, name="test")
    results = await asyncio.gather(lookup.get("a"), lookup.get("b"), return_exceptions=True)
    assert [type(result) for result in results] == [ConnectionRefusedError] * 2
    assert store.batches == []
    store.refuse = None
    assert await lookup.get("a") == 1
    await lookup.settle()


@pytest.mark.parametrize(("passes", "batches"), [(0, [["a"], ["b"], ["c"]]), (2, [["a"], ["b", "c"]])])
async def test_keys_asked_within_the_next_passes_join_the_batch(passes: int, batches: list[list[str]]) -> None:
    # "c" is asked for on the pass after the first query answered, as a CONNECT read with the same wake-up would be:
    # with two passes it joins "b", which waited during that query.
    store = Store({"a": 1, "b": 2, "c": 3})
    store.gate.clear()
    loop = asyncio.get_running_loop()
    asked: list[asyncio.Future[int | None]] = []

    async def fetch_then_ask(connection: int, keys: list[str]) -> dict[str, int]:
        found = await store.fetch(connection, keys)
        if keys == ["a"]:
            loop.call_soon(lambda: asked.append(lookup.future("c")))
        return found

    lookup = BatchLookup(store.open, fetch_then_ask, name="test", passes=passes)
    first = lookup.future("a")
    while not store.batches:
        await asyncio.sleep(0)
    second = lookup.future("b")
    store.gate.set()
    assert (await first, await second) == (1, 2)
    while not asked:
        await asyncio.sleep(0)
    assert await asked[0] == 3
    assert store.batches == batches
