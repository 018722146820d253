"""A served hub, Chromium, and a console tab signed in as the hub's administrator, at each width."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser

from tests.integration.auth.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, RunningHub, hub_settings, start_hub
from tests.support.browser import VIEWPORTS, ConsoleTab, chromium, console_tab


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[RunningHub]:
    """A hub on SQLite, every port ephemeral."""
    async with start_hub(hub_settings(f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}", tmp_path)) as running:
        yield running


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium."""
    async with chromium() as launched:
        yield launched


@pytest.fixture(params=sorted(VIEWPORTS))
def viewport(request: pytest.FixtureRequest) -> str:
    """Each console flow runs on a desktop and at a phone's 390 px."""
    return str(request.param)


@pytest.fixture
async def admin_tab(hub: RunningHub, browser: Browser, viewport: str) -> AsyncIterator[ConsoleTab]:
    """A console tab signed in as the administrator; the test fails on any console error or outside request."""
    async with console_tab(browser, hub.base_url, viewport) as tab:
        await tab.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
        yield tab
        tab.assert_clean()
