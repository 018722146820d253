"""Hub fixtures shared by every test directory (registered by ``tests/conftest.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.served import LocalHub, hub_settings, serve_in_process


@pytest.fixture
async def running_hub(database_url: str, tmp_path: Path) -> AsyncIterator[LocalHub]:
    """A hub of this test in its event loop, on SQLite or PostgreSQL, logged in as the administrator."""
    async with serve_in_process(hub_settings(tmp_path, database_url=database_url)) as running:
        yield running


@pytest.fixture
async def sqlite_hub(tmp_path: Path) -> AsyncIterator[LocalHub]:
    """A hub of this test in its event loop on SQLite, for what does not depend on the database."""
    async with serve_in_process(hub_settings(tmp_path)) as running:
        yield running
