"""`mqtthub serve` runs on the loop MQTTHUB_EVENT_LOOP asks for; `auto` takes uvloop when it is installed."""

from __future__ import annotations

import asyncio
import importlib.util
import sys

import pytest

from mqtthub.cli.serve import run_on_loop
from mqtthub.errors import ConfigurationError
from tests.conftest import require


def loop_module(choice: str) -> str:
    seen: list[str] = []

    async def main() -> None:
        seen.append(type(asyncio.get_running_loop()).__module__.split(".")[0])

    run_on_loop(choice, main())
    return seen[0]


def test_auto_takes_uvloop_when_installed_and_asyncio_is_kept_on_request() -> None:
    require(importlib.util.find_spec("uvloop") is not None, "uvloop")
    assert loop_module("auto") == "uvloop"
    assert loop_module("uvloop") == "uvloop"
    assert loop_module("asyncio") == "asyncio"


def test_without_uvloop_auto_falls_back_and_uvloop_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # what an install without it looks like to `import`
    assert loop_module("auto") == "asyncio"
    with pytest.raises(ConfigurationError, match="needs uvloop"):
        loop_module("uvloop")
