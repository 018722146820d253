"""Hubs of the API tests: the broker's maximum packet size small, so that publish limits are cheap to cross."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.served import LocalHub, hub_settings, serve_in_process

MAX_PACKET_SIZE = 64 * 1024
"""The broker's maximum packet size in these hubs."""


@pytest.fixture
async def running_hub(database_url: str, tmp_path: Path) -> AsyncIterator[LocalHub]:
    """A hub on SQLite or PostgreSQL."""
    async with serve_in_process(
        hub_settings(tmp_path, database_url=database_url, max_packet_size=MAX_PACKET_SIZE)
    ) as running:
        yield running


@pytest.fixture
async def sqlite_hub(tmp_path: Path) -> AsyncIterator[LocalHub]:
    """A hub on SQLite, for what does not depend on the database."""
    async with serve_in_process(hub_settings(tmp_path, max_packet_size=MAX_PACKET_SIZE)) as running:
        yield running
