"""``mqtthub serve`` as a child process on ephemeral ports, as a user runs it (see :mod:`tests.support.served`)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from mqtthub.config import ENV_PREFIX
from tests.support.access import login, run_call
from tests.support.served import READY_TIMEOUT, TEST_DEFAULTS, Served, wait_until_serving

_LISTENING = re.compile(r"^(?P<name>[\w ]+?) listening on (?P<url>\S+)$")
STOP_TIMEOUT = 10.0
FIRST_RUN: dict[str, Any] = {"admin_email": None, "admin_password": None}
"""Overrides for a first run as a user has it: the default administrator, whose generated password is printed."""


def settings_env(**overrides: Any) -> dict[str, str]:
    """``MQTTHUB_*`` variables of settings given as keyword arguments (``None`` leaves a setting unset)."""
    env: dict[str, str] = {}
    for name, value in overrides.items():
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, list | dict | tuple):
            text = json.dumps(value)
        else:
            text = str(value)
        env[ENV_PREFIX + name.upper()] = text
    return env


@dataclass
class HubProcess(Served):
    """A running ``mqtthub serve``: its process, where each service listens, and everything it printed."""

    process: subprocess.Popen[str] = field(repr=False, kw_only=True)
    urls: dict[str, str] = field(kw_only=True)
    """Every ``<name> listening on <url>`` line, by name."""
    stdout: list[str] = field(kw_only=True)
    stderr: list[str] = field(kw_only=True)

    @property
    def output(self) -> str:
        """Everything printed so far, standard output then standard error."""
        return "\n".join(self.stdout + self.stderr)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> float:
        """Send ``sig`` (SIGINT is Ctrl+C) and wait for the exit; return how long it took."""
        started = time.monotonic()
        self.process.send_signal(sig)
        self.process.wait(timeout=timeout)
        return time.monotonic() - started

    def kill(self) -> None:
        """``kill -9``: the process gets no chance to clean up."""
        self.process.kill()
        self.process.wait(STOP_TIMEOUT)


def _pump(stream: Iterator[str], lines: list[str]) -> None:
    for line in stream:
        lines.append(line.rstrip("\n"))


def _end(process: subprocess.Popen[str]) -> None:
    """SIGTERM, then SIGKILL if the process is still there after :data:`STOP_TIMEOUT` (by its own PID)."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def serve_process(
    workdir: Path,
    *,
    args: list[str] | None = None,
    env: Mapping[str, str] | None = None,
    wait_for: tuple[str, ...] = ("HTTP API",),
    **overrides: Any,
) -> Iterator[HubProcess]:
    """Run ``python -m mqtthub serve`` in ``workdir`` until the caller is done with it, then end it.

    Args:
        workdir: the working directory (the hub's data directory and SQLite database unless overridden).
        args: command-line arguments after ``serve``.
        env: further environment variables (not settings).
        wait_for: the ``<name> listening on`` lines to wait for (``HTTP API``, ``MQTT``, ``MQTT WSS``, …).
        **overrides: settings as keyword arguments, over :data:`~tests.support.served.TEST_DEFAULTS`;
            ``admin_password=None`` gives a first run that prints a generated password (and no login).
    """
    settings = TEST_DEFAULTS | overrides
    environment = (
        {key: value for key, value in os.environ.items() if not key.startswith(ENV_PREFIX)}
        | {"PYTHONUNBUFFERED": "1"}
        | settings_env(**settings)
        | dict(env or {})
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "mqtthub", "serve", *(args or [])],
        cwd=workdir,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield _ready(process, wait_for, settings)
    finally:
        _end(process)


def _ready(process: subprocess.Popen[str], wait_for: tuple[str, ...], settings: dict[str, Any]) -> HubProcess:
    stdout: list[str] = []
    stderr: list[str] = []
    assert process.stdout is not None
    assert process.stderr is not None
    threading.Thread(target=_pump, args=(process.stdout, stdout), daemon=True).start()
    threading.Thread(target=_pump, args=(process.stderr, stderr), daemon=True).start()
    urls: dict[str, str] = {}
    deadline = time.monotonic() + READY_TIMEOUT
    while not all(name in urls for name in ("HTTP API", *wait_for)):
        for line in list(stdout):
            if match := _LISTENING.match(line.strip()):
                urls[match["name"]] = match["url"]
        if process.poll() is not None:
            raise RuntimeError("hub exited early:\n" + "\n".join(stdout + stderr))
        if time.monotonic() > deadline:
            raise RuntimeError("hub did not start:\n" + "\n".join(stdout + stderr))
        time.sleep(0.05)
    http_url = urls["HTTP API"]
    wait_until_serving(http_url)
    admin = None
    if settings.get("admin_password") is not None:
        with httpx.Client(base_url=http_url, timeout=30) as anonymous:
            admin = run_call(anonymous, login(http_url, settings["admin_email"], settings["admin_password"]))
    mqtt_urls = {name: url for name, url in urls.items() if name.startswith("MQTT")}
    return HubProcess(http_url, mqtt_urls, admin, process=process, urls=urls, stdout=stdout, stderr=stderr)
