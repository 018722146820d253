"""Memory is released after the connection count fell far enough since its peak, not before."""

from __future__ import annotations

import asyncio
import contextlib
import gc

from mqtthub.memory import COLLECTOR_THRESHOLDS, MemoryReleaser, tune_collector


def test_memory_is_released_once_a_large_drop_has_settled() -> None:
    counts = iter([0, 500, 3_000, 2_500, 1_900, 1_900, 1_000, 5_000, 3_999, 3_999])
    releaser = MemoryReleaser(lambda: next(counts), drop=1_000)
    seen = [releaser.check() for _ in range(10)]
    # Peak 3,000; 1,900 is 1,000 below it but still falling, so the release waits for the next look; the peak
    # is then 1,900 (and later 5,000, from which 3,999 falls far enough and then holds).
    assert seen == [False, False, False, False, False, True, False, False, False, True]
    assert releaser.releases == 2


def test_a_count_that_keeps_falling_is_released_after_the_patience() -> None:
    counts = iter([10_000, 8_000, 6_000, 4_000, 2_000, 0])
    releaser = MemoryReleaser(lambda: next(counts), drop=1_000, patience=2)
    assert [releaser.check() for _ in range(6)] == [False, False, False, True, False, False]


async def test_the_loop_checks_every_interval_until_cancelled() -> None:
    looks: list[int] = []

    def count() -> int:
        looks.append(1)
        return 0

    task = asyncio.create_task(MemoryReleaser(count, interval=0.01).run())
    await asyncio.sleep(0.1)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert len(looks) >= 3


def test_the_collector_is_settled_for_a_server() -> None:
    before = gc.get_threshold()
    try:
        tune_collector()
        assert gc.get_threshold() == COLLECTOR_THRESHOLDS
        assert gc.get_freeze_count() > 0  # what existed is out of later collections
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
