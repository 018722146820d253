"""`mqtthub serve` runs on the loop MQTTHUB_EVENT_LOOP asks for; `auto`, the default, takes uvloop when it is installed,
and a plain install brings it on Linux."""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import sys

import pytest
from packaging.requirements import Requirement

from mqtthub.cli.serve import run_on_loop
from mqtthub.config import Settings
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


def test_the_default_is_auto_and_a_plain_install_brings_uvloop_on_linux() -> None:
    assert Settings.model_fields["event_loop"].default == "auto"
    requirements = [Requirement(text) for text in importlib.metadata.requires("mqtthub") or []]
    core = [r for r in requirements if r.name == "uvloop" and (r.marker is None or "extra" not in str(r.marker))]
    assert len(core) == 1, "uvloop is a requirement of mqtthub itself, not only of an extra"
    marker = core[0].marker
    assert marker is not None
    assert marker.evaluate({"sys_platform": "linux"})
    assert not marker.evaluate({"sys_platform": "win32"})
