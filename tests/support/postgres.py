"""A real PostgreSQL server for tests, started from the installed binaries in a temporary directory."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def find_postgres_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding ``initdb``, if PostgreSQL is installed."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(candidates[-1]).parent if candidates else None


def free_port() -> int:
    """A port that was free a moment ago (PostgreSQL cannot bind port 0 and report it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres_user(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; CI runs as root, so drop to the postgres account there.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


class PostgresServer:
    """A throw-away server in a temporary directory, on 127.0.0.1; it can be stopped and started again.

    ``stop(mode)`` runs ``pg_ctl stop -m <mode>`` as an operator would (``fast``: clients are
    disconnected and the server shuts down cleanly; ``immediate``: it quits at once and recovers
    from its WAL on the next start). :meth:`start` brings it back on the same port and data.
    """

    def __init__(self) -> None:
        bindir = find_postgres_bin()
        if bindir is None:
            raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
        self.bindir = bindir
        self.workdir = Path(tempfile.mkdtemp(prefix="mqtthub-pg-"))
        self.datadir = self.workdir / "data"
        if os.geteuid() == 0:
            shutil.chown(self.workdir, "postgres", "postgres")
        subprocess.run(
            _as_postgres_user(
                [str(bindir / "initdb"), "-D", str(self.datadir), "-U", "postgres", "-A", "trust", "-E", "UTF8"]
            ),
            check=True,
            capture_output=True,
        )
        self.port = free_port()
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}"
        """Base URL (append ``/<database>``)."""
        self._log = (self.workdir / "server.log").open("ab")
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._process = subprocess.Popen(
            _as_postgres_user(
                [
                    str(self.bindir / "postgres"),
                    "-D", str(self.datadir),
                    "-p", str(self.port),
                    "-h", "127.0.0.1",
                    "-k", str(self.workdir),
                    "-c", "fsync=off",
                    "-c", "max_connections=200",
                ]
            ),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            ready = subprocess.run(
                [str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"],
                capture_output=True,
            )
            if ready.returncode == 0:
                return
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "PostgreSQL did not start: " + (self.workdir / "server.log").read_text(errors="replace")
                )
            time.sleep(0.2)

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m <mode>`` (``smart``, ``fast`` or ``immediate``), waiting for the exit."""
        subprocess.run(
            _as_postgres_user([str(self.bindir / "pg_ctl"), "stop", "-D", str(self.datadir), "-m", mode, "-w"]),
            check=True,
            capture_output=True,
        )
        if self._process is not None:
            self._process.wait(timeout=30)
            self._process = None

    def close(self) -> None:
        """Stop the server if it runs and delete its files."""
        process = self._process
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            self._process = None
        self._log.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Run a throw-away server on 127.0.0.1 (a test may stop and start it meanwhile); close it afterwards."""
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.close()


@contextmanager
def postgres_server() -> Iterator[str]:
    """Run a throw-away server on 127.0.0.1 and yield its base URL ``postgresql+asyncpg://postgres@host:port``."""
    with running_postgres() as server:
        yield server.url
