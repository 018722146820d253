"""Coalescing concurrent lookups of the same kind into one database query.

When a fleet reconnects, thousands of CONNECTs arrive within a second. Looking each
credential up in its own transaction makes every CONNECT wait for its own round trip
through the database driver (one worker thread for SQLite). :class:`BatchLookup` instead
keeps at most one query of its kind running: keys asked for meanwhile wait together and go
into the next query, so the number of round trips follows the database's speed, not the
number of clients.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BatchLookup(Generic[K, V]):
    """Looks keys up through ``fetch``, many at a time, one query in flight.

    Args:
        fetch: Returns the values found for a batch of distinct keys (missing keys: not found).
        name: Names the lookup in logs.
        max_batch: Most keys per query (bound parameters stay well under every database's limit).
    """

    def __init__(self, fetch: Callable[[list[K]], Awaitable[dict[K, V]]], *, name: str, max_batch: int = 500) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {max_batch}")
        self._fetch = fetch
        self._name = name
        self._max_batch = max_batch
        self._waiting: dict[K, asyncio.Future[V | None]] = {}
        self._running = False
        self._task: asyncio.Task[None] | None = None
        self.queries = 0
        """Queries run so far."""

    async def get(self, key: K) -> V | None:
        """The value of ``key``, or None when the query found none; raises what the query raised."""
        future = self._waiting.get(key)
        if future is None:
            future = self._waiting[key] = asyncio.get_running_loop().create_future()
            if not self._running:
                self._running = True
                # Started on the next pass of the event loop, so keys asked for in this one join the batch.
                asyncio.get_running_loop().call_soon(self._start)
        # A client that goes away while waiting must not cancel the answer others wait for.
        return await asyncio.shield(future)

    def _start(self) -> None:
        # Held here until it ends: the event loop keeps only weak references to tasks.
        self._task = asyncio.get_running_loop().create_task(self._drain(), name=f"batch-lookup:{self._name}")

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch = dict(_take(self._waiting, self._max_batch))
                self.queries += 1
                try:
                    found = await self._fetch(list(batch))
                except Exception as exc:
                    logger.warning("%s lookup of %d key(s) failed: %r", self._name, len(batch), exc)
                    for future in batch.values():
                        _settle(future, exception=exc)
                    continue
                for key, future in batch.items():
                    _settle(future, result=found.get(key))
        finally:
            self._running = False
            self._task = None


def _take(waiting: dict[K, asyncio.Future[V | None]], count: int) -> Iterable[tuple[K, asyncio.Future[V | None]]]:
    keys = list(waiting)[:count]
    return [(key, waiting.pop(key)) for key in keys]


def _settle(future: asyncio.Future[V | None], *, result: V | None = None, exception: Exception | None = None) -> None:
    if future.done():
        return
    if exception is not None:
        future.set_exception(exception)
        # Every waiter may have gone away: the exception is then nobody's to retrieve, not an error.
        future.add_done_callback(lambda done: done.exception())
    else:
        future.set_result(result)
