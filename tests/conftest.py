"""Fixtures shared by every test: real databases (SQLite and PostgreSQL) on throw-away storage."""

from __future__ import annotations

import os
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import hypothesis
import pytest

from tests.support.postgres import find_postgres_bin, postgres_server

pytest_plugins = ["tests.support.fixtures"]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Property tests assert what the code does with each example, not how fast examples are made or run: on a loaded
# machine, generation and per-example time vary by an order of magnitude, so neither is a failure here.
hypothesis.settings.register_profile("mqtthub", deadline=None, suppress_health_check=[hypothesis.HealthCheck.too_slow])
hypothesis.settings.load_profile("mqtthub")
_BACKEND_ID = re.compile(r"\[(?:[^\]]*-)?(sqlite|postgresql)(?:-[^\]]*)?\]$")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say how many database tests ran on each backend, so a run shows both were exercised."""
    outcomes: Counter[tuple[str, str]] = Counter()
    for outcome in ("passed", "failed", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            match = _BACKEND_ID.search(getattr(report, "nodeid", ""))
            if match and getattr(report, "when", "call") == "call":
                outcomes[(match[1], outcome)] += 1
    if outcomes:
        parts = []
        for backend in ("sqlite", "postgresql"):
            done = ", ".join(
                f"{outcomes[(backend, o)]} {o}" for o in ("passed", "failed", "error") if outcomes[(backend, o)]
            )
            parts.append(f"{backend} ({done or 'none'})")
        terminalreporter.write_line("database tests by backend: " + "; ".join(parts))


def require(condition: bool, what: str) -> None:
    """Skip when ``what`` is missing on a developer machine; fail in CI, where nothing may be skipped."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI but missing")
    pytest.skip(f"{what} is not installed")


@pytest.fixture(scope="session")
def postgres_base_url() -> Iterator[str]:
    """A real PostgreSQL server for this test session (one per xdist worker)."""
    require(find_postgres_bin() is not None, "PostgreSQL (apt-get install postgresql)")
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A URL of an empty database: a SQLite file, or a fresh database on the session's PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
        return
    base: str = request.getfixturevalue("postgres_base_url")
    name = "t_" + uuid.uuid4().hex[:12]
    dsn = base.replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(dsn + "/postgres")
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    yield f"{base}/{name}"
    connection = await asyncpg.connect(dsn + "/postgres")
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()
