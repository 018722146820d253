"""The brokers under test, each started as its own process on 127.0.0.1 and stopped by its PID.

* the embedded broker, through ``bench/run_broker.py`` (default asyncio loop, or uvloop);
* Debian's ``mosquitto``, with a generated configuration whose limits are at least
  as generous as the embedded broker's defaults, so neither is held back by a
  smaller queue or in-flight window.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
MOSQUITTO = "/usr/sbin/mosquitto"

MOSQUITTO_CONFIG = """\
listener {port} 127.0.0.1
allow_anonymous true
persistence {persistence}
persistence_location {directory}/
autosave_interval 1
# Limits at least as generous as the embedded broker's defaults (max_inflight 100, max_queued_messages 1000).
max_connections -1
max_inflight_messages 100
max_queued_messages 100000
# asyncio sets TCP_NODELAY on its sockets; mosquitto does only when asked.
set_tcp_nodelay true
log_dest stderr
log_type error
log_type warning
"""


@dataclass(frozen=True, slots=True)
class Target:
    """One broker configuration the benchmark runs against."""

    key: str
    label: str
    uvloop: bool = False
    persistence: str = "off"
    """Embedded broker: ``off``, ``periodic`` or ``sync``; mosquitto: ``off`` or anything else for
    ``persistence true`` (saved every second, ``autosave_interval 1``)."""

    @property
    def is_mosquitto(self) -> bool:
        """Whether this is the reference broker."""
        return self.key == "mosquitto"


@dataclass(slots=True)
class RunningBroker:
    """A started broker: its process id and the port it listens on.

    ``final_stats`` is filled when the embedded broker has stopped: its counters (``BrokerStats``).
    """

    pid: int
    port: int
    final_stats: dict[str, int] = field(default_factory=dict)


def mosquitto_version() -> str:
    """``2.0.11`` and the like, from ``mosquitto -h``."""
    result = subprocess.run([MOSQUITTO, "-h"], capture_output=True, text=True, timeout=10, check=False)
    match = re.search(r"mosquitto version (\S+)", result.stdout + result.stderr)
    return match.group(1) if match else "unknown"


def rss_kib(pid: int) -> int:
    """Resident set size of a process, in KiB (``VmRSS`` in ``/proc/<pid>/status``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used (``/proc/<pid>/stat``), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"broker exited with status {process.returncode}")
        with socket.socket() as sock, contextlib.suppress(OSError):
            sock.connect(("127.0.0.1", port))
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on port {port} after {timeout}s")


def _read_ready(process: subprocess.Popen[bytes], timeout: float) -> int:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    line = b""
    while not line.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([process.stdout], [], [], remaining)[0]:
            raise RuntimeError("the embedded broker did not report ready in time")
        chunk = process.stdout.readline()
        if not chunk:
            raise RuntimeError(f"the embedded broker exited with status {process.wait()}")
        line += chunk
    word, port = line.decode().split()
    if word != "ready":
        raise RuntimeError(f"unexpected line from the broker runner: {line!r}")
    return int(port)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@contextlib.contextmanager
def started(target: Target, *, profile: Path | None = None, max_queued: int | None = None) -> Iterator[RunningBroker]:
    """Start the broker of ``target``, yield its PID and port, stop it by PID.

    ``max_queued`` raises the embedded broker's per-session queue (mosquitto's is 100,000 here).
    """
    with tempfile.TemporaryDirectory(prefix="mqtthub-bench-") as tmp:
        if target.is_mosquitto:
            port = _free_port()
            config = Path(tmp) / "mosquitto.conf"
            persistence = "false" if target.persistence == "off" else "true"
            # mosquitto started as root drops to its own user, which must be able to write its database here.
            os.chmod(tmp, 0o777)
            config.write_text(MOSQUITTO_CONFIG.format(port=port, persistence=persistence, directory=tmp))
            process = subprocess.Popen([MOSQUITTO, "-c", str(config)], stdin=subprocess.DEVNULL)
            try:
                _wait_listening(port, process, 10)
                yield RunningBroker(process.pid, port)
            finally:
                _stop(process)
            return
        command = [sys.executable, str(BENCH_DIR / "run_broker.py"), "--port", "0"]
        if target.uvloop:
            command.append("--uvloop")
        if max_queued is not None:
            command += ["--max-queued", str(max_queued)]
        if target.persistence != "off":
            command += ["--persistence", target.persistence, "--state-dir", tmp]
        if profile is not None:
            command += ["--profile", str(profile)]
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        final_stats: dict[str, int] = {}
        try:
            yield RunningBroker(process.pid, _read_ready(process, 30), final_stats)
        finally:
            _stop(process)
            if process.stdout is not None:
                for line in process.stdout.read().decode().splitlines():
                    if line.startswith("stats "):
                        final_stats.update(json.loads(line.removeprefix("stats ")))
                process.stdout.close()
