"""Hubs of the messaging tests: in a thread of the test process, so blocking and asyncio clients both reach them.

Rate limiting is off unless a test sets it, and products may point at the hub's own broker (``127.0.0.1``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.support.served import ThreadedHub, hub_settings, serve_in_thread

T = TypeVar("T")
MESSAGING_DEFAULTS: dict[str, Any] = {"api_rate_limit": 0, "outbound_allow": "127.0.0.1"}


@contextmanager
def threaded_hub(data_dir: Path, **overrides: Any) -> Iterator[ThreadedHub]:
    """A hub of the messaging tests with these settings overrides."""
    with serve_in_thread(hub_settings(data_dir, **(MESSAGING_DEFAULTS | overrides))) as hub:
        yield hub


@pytest.fixture(scope="module")
def shared_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedHub]:
    """One hub for the tests of a module that do not change its settings or state."""
    with threaded_hub(tmp_path_factory.mktemp("hub")) as hub:
        yield hub


def wait_for(condition: Callable[[], T | None], what: str, timeout: float = 30) -> T:
    """Poll ``condition`` until it returns something truthy (generous timeout, no timing assertions)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
