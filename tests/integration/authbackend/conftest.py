"""The world every contract's tests share: a hub serving the auth backend and the identity matrix's identities."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.authbackend.world import World, auth_backend_world


@pytest.fixture
async def world(database_url: str, tmp_path: Path) -> AsyncIterator[World]:
    async with auth_backend_world(database_url, tmp_path) as made:
        yield made
