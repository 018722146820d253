"""Run ``mqtthub serve`` as a real child process on ephemeral ports, as a user would."""

from __future__ import annotations

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

_LISTENING = re.compile(r"^(?P<name>[\w ]+?) listening on (?P<url>\S+)$")


@dataclass
class HubProcess:
    """A running hub: its process, where each service listens, and everything it printed."""

    process: subprocess.Popen[str]
    urls: dict[str, str] = field(default_factory=dict)
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)

    @property
    def http_url(self) -> str:
        """Base URL of the HTTP API."""
        return self.urls["HTTP API"]

    def port(self, name: str) -> int:
        """The port of the service printed as ``<name> listening on <url>``."""
        return int(self.urls[name].rsplit(":", 1)[1].split("/")[0])

    def stop(self, sig: int = signal.SIGINT, timeout: float = 10) -> float:
        """Send ``sig`` and wait for the exit; return how long it took."""
        started = time.monotonic()
        self.process.send_signal(sig)
        self.process.wait(timeout=timeout)
        return time.monotonic() - started


def _pump(stream: Iterator[str], lines: list[str]) -> None:
    for line in stream:
        lines.append(line.rstrip("\n"))


@contextmanager
def run_hub(
    workdir: Path,
    *,
    env: Mapping[str, str] | None = None,
    args: list[str] | None = None,
    wait_for: tuple[str, ...] = ("HTTP API",),
) -> Iterator[HubProcess]:
    """Start ``python -m mqtthub serve`` in ``workdir`` with every port ephemeral; stop it afterwards."""
    environment = (
        {key: value for key, value in os.environ.items() if not key.startswith("MQTTHUB_")}
        | {
            "MQTTHUB_HOST": "127.0.0.1",
            "MQTTHUB_HTTP_PORT": "0",
            "MQTTHUB_MQTT_PORT": "0",
            "MQTTHUB_WS_PORT": "0",
            "MQTTHUB_MQTTS_PORT": "0",
            "MQTTHUB_WSS_PORT": "0",
            "PYTHONUNBUFFERED": "1",
        }
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
    hub = HubProcess(process)
    assert process.stdout is not None
    assert process.stderr is not None
    threading.Thread(target=_pump, args=(process.stdout, hub.stdout), daemon=True).start()
    threading.Thread(target=_pump, args=(process.stderr, hub.stderr), daemon=True).start()
    try:
        deadline = time.monotonic() + 60
        while not all(name in hub.urls for name in wait_for):
            for line in list(hub.stdout):
                match = _LISTENING.match(line.strip())
                if match:
                    hub.urls[match["name"]] = match["url"]
            if process.poll() is not None:
                raise RuntimeError("hub exited early:\n" + "\n".join(hub.stdout + hub.stderr))
            if time.monotonic() > deadline:
                raise RuntimeError("hub did not start:\n" + "\n".join(hub.stdout + hub.stderr))
            time.sleep(0.05)
        yield hub
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
