"""A service's background work: named tasks in one task group, loops restarted after a crash, stopped together.

A service (telemetry, messaging, integrations) enters one :class:`BackgroundTasks` when it starts and
leaves it when it stops: leaving cancels every task and awaits them, so nothing outlives its owner.

A loop that raises is a bug or a fault nobody expected; it must neither vanish silently nor take
the whole hub down with it (a retention pass that trips over a bad row must not stop message
ingestion). So :meth:`BackgroundTasks.loop` logs the crash with its traceback, counts it in
:attr:`BackgroundTasks.restarts`, and runs the loop again after a jittered exponential backoff
(:func:`backoff_delay`); a loop that ran longer than the longest backoff before crashing starts over
from the shortest delay. One-off tasks (:meth:`BackgroundTasks.spawn`) are logged when they fail and
not run again. No exception reaches the task group itself, so one failing task never cancels the others.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Self

from mqtthub.errors import StateError

logger = logging.getLogger(__name__)

LoopFactory = Callable[[], Coroutine[Any, Any, None]]
"""Makes a fresh run of a loop (a coroutine can be awaited once, so each restart needs a new one)."""


def backoff_delay(attempt: int, minimum: float, maximum: float) -> float:
    """Jittered exponential backoff: a uniform draw from the upper half of ``min(maximum, minimum·2^attempt)``."""
    ceiling = min(maximum, minimum * (2 ** min(attempt, 30)))
    return random.uniform(ceiling / 2, ceiling)


class ServiceState(enum.Enum):
    """Life cycle of a service and of its :class:`BackgroundTasks`; each state is entered once, in this order."""

    CREATED = "created"
    RUNNING = "running"
    CLOSING = "closing"
    CLOSED = "closed"


class BackgroundTasks:
    """The task group of one service; an async context manager.

    Args:
        owner: Names the service in log lines (``"telemetry"``).
        restart_min: First delay before a crashed loop runs again, in seconds.
        restart_max: Longest delay before a crashed loop runs again, in seconds.
    """

    def __init__(self, owner: str, *, restart_min: float = 1.0, restart_max: float = 60.0) -> None:
        self.owner = owner
        self.restart_min = restart_min
        self.restart_max = restart_max
        self.state = ServiceState.CREATED
        self.restarts: Counter[str] = Counter()
        """Crashes of each loop, by task name, since the service started."""
        self._group = asyncio.TaskGroup()
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Self:
        if self.state is not ServiceState.CREATED:
            raise StateError(
                f"the background tasks of {self.owner} can be started only once (they are {self.state.value})"
            )
        await self._group.__aenter__()
        self.state = ServiceState.RUNNING
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Cancel every task and wait until they ended; closing twice is a no-op."""
        if self.state is not ServiceState.RUNNING:
            self.state = ServiceState.CLOSED
            return
        self.state = ServiceState.CLOSING
        for task in list(self._tasks):
            task.cancel()
        await self._group.__aexit__(None, None, None)
        self.state = ServiceState.CLOSED

    @property
    def running(self) -> bool:
        """Whether tasks can be started (entered and not closing)."""
        return self.state is ServiceState.RUNNING

    def loop(self, name: str, factory: LoopFactory) -> None:
        """Run ``factory()`` as the task ``name`` until the service stops, again after each crash (see above).

        Raises:
            StateError: the tasks are not running.
        """
        self._require_running()
        self._start(name, self._supervise(name, factory))

    def spawn(self, name: str, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` once as the task ``name``; an exception it raises is logged.

        Raises:
            StateError: the tasks are not running (``work`` is closed, never run).
        """
        try:
            self._require_running()
        except StateError:
            work.close()
            raise
        self._start(name, self._once(name, work))

    def _require_running(self) -> None:
        if self.state is not ServiceState.RUNNING:
            raise StateError(f"the background tasks of {self.owner} are {self.state.value}")

    def _start(self, name: str, coro: Coroutine[Any, Any, None]) -> None:
        task = self._group.create_task(coro, name=f"{self.owner}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _supervise(self, name: str, factory: LoopFactory) -> None:
        attempt = 0
        while True:
            started = time.monotonic()
            try:
                await factory()
            except Exception:
                self.restarts[name] += 1
                if time.monotonic() - started > self.restart_max:
                    attempt = 0
                delay = backoff_delay(attempt, self.restart_min, self.restart_max)
                attempt += 1
                logger.exception("%s: the %s loop crashed; it runs again in %.1f s", self.owner, name, delay)
                await asyncio.sleep(delay)
            else:
                return

    async def _once(self, name: str, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except Exception:
            logger.exception("%s: the %s task failed", self.owner, name)
