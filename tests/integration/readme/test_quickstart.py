"""The quick start's one line, run as written in a copy of the repository: a new venv, ``pip install .``, serve.

Apart from the walk of the other blocks because a fresh install takes about a minute: under xdist it runs on
another worker meanwhile. The listeners get free ports (``MQTTHUB_*_PORT=0``) instead of the fixed defaults.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.support.readme import README, runnable_blocks

pytestmark = [pytest.mark.xdist_group("readme-quickstart"), pytest.mark.timeout(600)]

QUICK_START = "python3 -m venv .venv && .venv/bin/pip install ."
_HTTP = re.compile(r"HTTP API listening on (http://\S+)")


def _copy_of_the_repository(target: Path) -> None:
    """The files a clone has (tracked, and new ones not ignored), without the developer's venv and databases."""
    root = README.parent
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = root / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def test_the_quick_start_installs_and_serves(tmp_path: Path) -> None:
    """The line installs the hub into .venv and serves it: /health answers, first-run secrets made, Ctrl+C stops."""
    (block,) = [block for block in runnable_blocks() if QUICK_START in block.text]
    clone = tmp_path / "mqtthub"
    _copy_of_the_repository(clone)
    env = {key: value for key, value in os.environ.items() if not key.startswith("MQTTHUB_")}
    env.pop("VIRTUAL_ENV", None)
    env |= {"MQTTHUB_HTTP_PORT": "0", "MQTTHUB_MQTT_PORT": "0", "MQTTHUB_WS_PORT": "0", "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "quickstart.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            ["bash", "-c", "set -euo pipefail\n" + block.text],
            cwd=clone,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl+C goes to the process group, as a terminal sends it
        )
    try:
        deadline = time.monotonic() + 420
        while not (match := _HTTP.search(log.read_text())):
            assert process.poll() is None, f"the quick start ended ({process.returncode}):\n{log.read_text()}"
            assert time.monotonic() < deadline, f"the hub did not come up:\n{log.read_text()}"
            time.sleep(0.2)
        health = httpx.get(f"{match[1]}/health", timeout=10)
        assert health.status_code == 200, health.text
        assert health.json()["status"] == "healthy"
        # The web console's templates and vendored browser assets are part of the installed package.
        for page in ("/ui/signin", "/docs", "/ui/static/vendor/swagger-ui-dist/swagger-ui-bundle.js"):
            assert httpx.get(f"{match[1]}{page}", timeout=10).status_code == 200, page
        printed = log.read_text()
        assert "First run: an administrator account was created." in printed
        assert re.search(r"password: \S+ +\(shown only now\)", printed)
        assert (clone / "mqtthub.db").is_file()
        assert (clone / "mqtthub.secret").stat().st_mode & 0o777 == 0o600
        # The files the README calls secrets are ones git ignores.
        ignored = subprocess.run(
            ["git", "check-ignore", "--no-index", "mqtthub.db", "mqtthub.secret", "mqtthub-ca.key", "client.p12"],
            cwd=README.parent,
            capture_output=True,
            text=True,
            check=False,
        )
        assert ignored.stdout.split() == ["mqtthub.db", "mqtthub.secret", "mqtthub-ca.key", "client.p12"]
        started = time.monotonic()
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=30) == 0, log.read_text()
        print(f"stopped {time.monotonic() - started:.1f}s after Ctrl+C")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
