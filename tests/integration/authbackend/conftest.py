"""The world every contract's tests share: a hub serving the auth backend and the identity matrix's identities."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.authbackend.world import World, auth_backend_world


@pytest.fixture
async def world(database_url: str, tmp_path: Path) -> AsyncIterator[World]:
    """The world of each database; on PostgreSQL the brokers ask the auth backend's own port, on SQLite the API's,
    so every contract's tests run through both servers without doubling their number."""
    async with auth_backend_world(database_url, tmp_path, own_port=database_url.startswith("postgresql")) as made:
        yield made
