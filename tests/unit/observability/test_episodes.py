from __future__ import annotations

import asyncio
import logging

import pytest

from mqtthub.broker.episodes import EpisodeLog

logger = logging.getLogger("tests.episodes")


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == logger.name]


async def test_an_episode_is_one_line_then_one_summary_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=logger.name)
    episodes = EpisodeLog(interval=0.05)
    for n in range(6):
        episodes(logger, logging.INFO, "client-a", "publish denied: client %s message %d", "a", n)
    episodes(logger, logging.INFO, "client-b", "publish denied: client %s message %d", "b", 0)
    assert _lines(caplog) == ["publish denied: client a message 0", "publish denied: client b message 0"]
    await asyncio.sleep(0.08)
    assert _lines(caplog)[2:] == ["publish denied: client a message 0 (5 more in the last 0.05s)"]
    summary = next(record for record in caplog.records if "more in the last" in record.getMessage())
    assert getattr(summary, "repeated", None) == 5
    await asyncio.sleep(0.08)  # a quiet interval ends the episode
    assert episodes.open_episodes == 0
    assert len(_lines(caplog)) == 3
    episodes(logger, logging.INFO, "client-a", "publish denied: client %s message %d", "a", 9)
    assert _lines(caplog)[-1] == "publish denied: client a message 9"


def test_without_an_event_loop_every_event_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=logger.name)
    episodes = EpisodeLog(interval=60)
    for _ in range(3):
        episodes(logger, logging.INFO, "key", "event")
    assert _lines(caplog) == ["event"] * 3


def test_a_disabled_level_opens_no_episode() -> None:
    episodes = EpisodeLog(interval=60)
    logging.getLogger("tests.quiet").setLevel(logging.WARNING)
    episodes(logging.getLogger("tests.quiet"), logging.INFO, "key", "event")
    assert episodes.open_episodes == 0


def test_an_episode_left_open_by_a_finished_loop_does_not_silence_the_next_loop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=logger.name)
    episodes = EpisodeLog(interval=60)

    async def event(n: int) -> None:
        episodes(logger, logging.INFO, "sink", "sink failed %d", n)

    asyncio.run(event(1))
    asyncio.run(event(2))
    assert _lines(caplog) == ["sink failed 1", "sink failed 2"]
