"""One log line per episode of a repeated event, not one per message.

Under load the same event (a client publishing where it may not, a slow subscriber losing
QoS 0 messages, a device sending bad payloads) can happen thousands of times a second; a line
each would drown the log and cost more than the event itself. :class:`EpisodeLog` logs the
first event of an episode at once, counts the ones that follow, and every ``interval`` seconds
logs one summary line with the count while the episode goes on. An interval without a
repetition ends the episode; the next event starts a new one and is logged at once again.

The counters in ``/metrics`` count every event; the log says when and where it started.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable
from dataclasses import dataclass


@dataclass(slots=True)
class _Episode:
    loop: asyncio.AbstractEventLoop
    logger: logging.Logger
    level: int
    message: str
    args: tuple[object, ...]
    repeated: int = 0


class EpisodeLog:
    """Logs repeated events as episodes; see the module docstring.

    Args:
        interval: Seconds between summary lines of a running episode (and the quiet time that ends one).
    """

    def __init__(self, *, interval: float = 10.0) -> None:
        self.interval = interval
        self._open: dict[Hashable, _Episode] = {}

    def __call__(
        self, logger: logging.Logger, level: int, key: Hashable, message: str, *args: object, exc_info: bool = False
    ) -> None:
        """One event; ``key`` names its episode (bounded: a client id, a reason, never a topic)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None  # no loop to end an episode: log every event
        episode = self._open.get(key)
        if episode is not None and episode.loop is loop:
            episode.repeated += 1
            return
        if not logger.isEnabledFor(level):
            return
        logger.log(level, message, *args, exc_info=exc_info)
        if loop is not None:
            # An episode of a loop that has gone (its summary never ran) is replaced, not continued.
            episode = self._open[key] = _Episode(loop, logger, level, message, args)
            loop.call_later(self.interval, self._summarize, key, episode)

    def _summarize(self, key: Hashable, episode: _Episode) -> None:
        if self._open.get(key) is not episode:
            return  # replaced by an episode of another loop
        if not episode.repeated:
            del self._open[key]
            return  # a quiet interval: the episode is over
        episode.logger.log(
            episode.level,
            "%s (%d more in the last %gs)",
            episode.message % episode.args,
            episode.repeated,
            self.interval,
            extra={"repeated": episode.repeated},
        )
        episode.repeated = 0
        episode.loop.call_later(self.interval, self._summarize, key, episode)

    @property
    def open_episodes(self) -> int:
        """Episodes still running."""
        return len(self._open)
