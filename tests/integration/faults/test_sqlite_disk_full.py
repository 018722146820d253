"""SQLite on a small tmpfs that fills up under load and is then freed: nothing acknowledged is lost."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import require
from tests.integration.telemetry.hubflows import started_hub
from tests.integration.telemetry.outage import Fault, ride_out_an_outage

pytestmark = pytest.mark.slow

DISK_SIZE = "8m"
HOLD_TIMEOUT = 2.0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs mounted for the test (needs root, as in CI)."""
    require(os.geteuid() == 0, "root (to mount a tmpfs)")
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE}", "tmpfs", str(mountpoint)], check=True)
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def _fill(path: Path) -> None:
    """Take every free byte of the file system ``path`` is on."""
    chunk = b"\0" * 65536
    with path.open("wb", buffering=0) as filler:
        while True:
            try:
                filler.write(chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
        # Then the last partial chunk's worth, byte by byte in larger steps.
        for size in (4096, 512, 1):
            with contextlib.suppress(OSError):
                while True:
                    filler.write(b"\0" * size)


async def test_sqlite_disk_full_under_load(small_disk: Path, tmp_path: Path) -> None:
    database_url = f"sqlite+aiosqlite:///{small_disk / 'hub.db'}"
    filler = small_disk / "filler"
    # A small queue and a short hold timeout: the queue fills and waiting publishers are disconnected
    # (never acknowledged) and reconnect; their re-sends must not be lost nor stored twice.

    async def fill() -> None:
        _fill(filler)

    async def free() -> None:
        filler.unlink()

    workdir = tmp_path / "work"
    workdir.mkdir()
    with started_hub(workdir, database_url, telemetry_queue_size=50, telemetry_hold_timeout=HOLD_TIMEOUT) as hub:
        report = await ride_out_an_outage(hub, database_url, Fault(fill, free, seconds=HOLD_TIMEOUT + 3))
        # A full disk is reported while nothing is written too (reads, and so pings, still work).
        async with httpx.AsyncClient(base_url=hub.http_url, timeout=30) as http:
            await fill()
            full = await http.get("/health")
            await free()
            freed = await http.get("/health")
        log = "\n".join(hub.stderr)
    assert full.status_code == 503
    assert full.json()["components"]["database"] | {"diskFreeBytes": 0} == {
        "status": "down",
        "dialect": "sqlite",
        "reason": "disk full",
        "diskFreeBytes": 0,
    }
    assert freed.status_code == 200, freed.text
    assert freed.json()["components"]["database"]["status"] == "up"
    assert report.reasons == {"disk full"}, report
    assert log.count("database writes failing") == 1, log
    # Past the hold timeout with a full queue, publishers were disconnected rather than acknowledged.
    assert sum(report.disconnects.values()) >= 1, report
