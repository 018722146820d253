"""A service's background tasks: crashed loops are logged and run again, stopping cancels and awaits everything."""

from __future__ import annotations

import asyncio
import logging

import pytest

from mqtthub.background import BackgroundTasks, ServiceState, backoff_delay
from mqtthub.errors import StateError
from mqtthub.observability.series import background_families


def test_backoff_is_jittered_exponential_and_capped() -> None:
    for attempt in range(12):
        ceiling = min(8.0, 0.5 * 2**attempt)
        for _ in range(50):
            assert ceiling / 2 <= backoff_delay(attempt, 0.5, 8.0) <= ceiling
    assert len({backoff_delay(3, 1.0, 60.0) for _ in range(20)}) > 1


async def test_a_crashed_loop_is_logged_and_runs_again(caplog: pytest.LogCaptureFixture) -> None:
    runs = 0
    third_run = asyncio.Event()

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs < 3:
            raise RuntimeError(f"crash {runs}")
        third_run.set()
        await asyncio.Event().wait()

    others_ran = asyncio.Event()

    async def steady() -> None:
        others_ran.set()
        await asyncio.Event().wait()

    with caplog.at_level(logging.ERROR, logger="mqtthub.background"):
        async with BackgroundTasks("svc", restart_min=0.01, restart_max=0.05) as tasks:
            tasks.loop("flaky", flaky)
            tasks.loop("steady", steady)
            async with asyncio.timeout(10):
                await third_run.wait()
                await others_ran.wait()
            assert tasks.restarts == {"flaky": 2}
            names = {task.get_name() for task in asyncio.all_tasks()}
            assert {"svc:flaky", "svc:steady"} <= names
        assert tasks.state is ServiceState.CLOSED
    assert "svc: the flaky loop crashed" in caplog.text
    assert "RuntimeError: crash 2" in caplog.text
    assert not {"svc:flaky", "svc:steady"} & {task.get_name() for task in asyncio.all_tasks()}


async def test_closing_cancels_and_awaits_every_task() -> None:
    cleaned: list[str] = []
    started = asyncio.Event()

    async def loop() -> None:
        try:
            started.set()
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0)  # still awaited by close()
            cleaned.append("loop")

    async def once() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.append("once")

    tasks = BackgroundTasks("svc")
    async with tasks:
        tasks.loop("loop", loop)
        tasks.spawn("once", once())
        await started.wait()
    assert sorted(cleaned) == ["loop", "once"]
    with pytest.raises(StateError, match="closed"):
        tasks.spawn("late", once())
    with pytest.raises(StateError, match="only once"):
        await tasks.__aenter__()


async def test_a_failed_one_off_task_is_logged_and_not_run_again(caplog: pytest.LogCaptureFixture) -> None:
    calls = 0

    async def fails() -> None:
        nonlocal calls
        calls += 1
        raise ValueError("bad input")

    with caplog.at_level(logging.ERROR, logger="mqtthub.background"):
        async with BackgroundTasks("svc", restart_min=0.01) as tasks:
            tasks.spawn("job", fails())
            for _ in range(100):
                await asyncio.sleep(0.01)
                if "the job task failed" in caplog.text:
                    break
    assert calls == 1
    assert "ValueError: bad input" in caplog.text


async def test_a_loop_that_returns_ends() -> None:
    done = asyncio.Event()

    async def finite() -> None:
        done.set()

    async with BackgroundTasks("svc") as tasks:
        tasks.loop("finite", finite)
        await done.wait()
        await asyncio.sleep(0)
        assert "svc:finite" not in {task.get_name() for task in asyncio.all_tasks()}
    assert tasks.restarts == {}


async def test_crashes_are_exported_for_metrics() -> None:
    crashed = asyncio.Event()

    async def fails() -> None:
        crashed.set()
        raise RuntimeError("boom")

    async with BackgroundTasks("svc", restart_min=10, restart_max=10) as tasks:
        tasks.loop("flaky", fails)
        await crashed.wait()
        await asyncio.sleep(0)
        (family,) = background_families([tasks])
    assert family.name == "mqtthub_background_loop_restarts"
    assert [(sample.labels, sample.value) for sample in family.samples if sample.name.endswith("_total")] == [
        ({"service": "svc", "loop": "flaky"}, 1)
    ]
