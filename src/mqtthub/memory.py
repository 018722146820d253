"""Giving memory back to the operating system after many MQTT connections closed.

CPython frees small objects into its own arenas and larger ones through the C library's
``malloc``; neither hands the pages back to the system right away, so after a wave of
clients disconnects the process would stay at its peak size. :class:`MemoryReleaser`
looks at the number of connected clients every second and, once it has fallen by ``drop``
since the last peak and stopped falling (the wave is over), runs a full garbage collection
and (with glibc) ``malloc_trim``, which returns the free heap pages. Both take milliseconds
on the event loop, which is why this happens once after a large drop, not on a timer alone;
a count that keeps falling for ``patience`` looks in a row is released anyway.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)

COLLECTOR_THRESHOLDS = (50_000, 20, 100)
"""Allocations between young collections, young collections per middle one, middle ones per full one.

CPython's defaults (700, 10, 10) suit scripts. A broker admitting thousands of clients a second allocates
700 objects in a fraction of a millisecond, and every client it keeps adds objects that the full collections
walk again and again: under a reconnect storm the defaults spent about a seventh of the event loop's time
collecting. Cyclic garbage still goes within a young collection, milliseconds under load.
"""


def tune_collector() -> None:
    """Settle the garbage collector for a long-running server, once start-up is done.

    What start-up built (modules, routes, caches) lives as long as the process: frozen, it stays out of every
    later collection, including the full one at exit, which otherwise delays the exit by seconds. Collections
    then run at :data:`COLLECTOR_THRESHOLDS`.
    """
    gc.freeze()
    gc.set_threshold(*COLLECTOR_THRESHOLDS)


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    return trim


class MemoryReleaser:
    """Releases memory after the connection count fell (see the module docstring).

    Args:
        connections: Returns how many clients are connected now.
        interval: Seconds between two looks at the count.
        drop: Connections that must have gone since the last peak.
        patience: Looks to wait for a falling count to settle.
    """

    def __init__(
        self, connections: Callable[[], int], *, interval: float = 1.0, drop: int = 1_000, patience: int = 10
    ) -> None:
        self._connections = connections
        self._interval = interval
        self._drop = drop
        self._patience = patience
        self._peak = 0
        self._last = 0
        self._waited = 0
        self._trim = _malloc_trim()
        self.releases = 0
        """Times memory was released so far."""

    def check(self) -> bool:
        """Look at the count once; release memory if it fell far enough. True if it did."""
        count = self._connections()
        last, self._last = self._last, count
        if self._peak - count < self._drop:
            self._peak = max(self._peak, count)
            return False
        if count < last and self._waited < self._patience:
            self._waited += 1  # still falling: what closes next is released with it
            return False
        self._peak = count
        self._waited = 0
        gc.collect()
        if self._trim is not None:
            self._trim(0)
        self.releases += 1
        logger.debug("released memory after the connection count fell to %d", count)
        return True

    async def run(self) -> None:
        """Check every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(self._interval)
            self.check()
