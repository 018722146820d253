"""A real hub in this process, on SQLite or PostgreSQL, with an administrator client (see the auth tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.auth.conftest import RunningHub, hub_settings, start_hub

MAX_PACKET_SIZE = 64 * 1024
"""The broker's maximum packet size in these hubs, small so that publish limits are cheap to cross."""


@pytest.fixture
async def running_hub(database_url: str, tmp_path: Path) -> AsyncIterator[RunningHub]:
    """A hub on SQLite or PostgreSQL, serving HTTP on an ephemeral port."""
    async with start_hub(hub_settings(database_url, tmp_path, max_packet_size=MAX_PACKET_SIZE)) as running:
        yield running


@pytest.fixture
async def sqlite_hub(tmp_path: Path) -> AsyncIterator[RunningHub]:
    """A hub on SQLite, for what does not depend on the database."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
    async with start_hub(hub_settings(url, tmp_path, max_packet_size=MAX_PACKET_SIZE)) as running:
        yield running
