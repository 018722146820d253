"""A served hub, Chromium, and a console tab signed in as the hub's administrator, at each width."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser

from tests.support.access import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.support.browser import VIEWPORTS, ConsoleTab, chromium, console_tab
from tests.support.served import LocalHub, hub_settings, serve_in_process


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[LocalHub]:
    """A hub on SQLite, every port ephemeral."""
    async with serve_in_process(hub_settings(tmp_path)) as running:
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
async def admin_tab(hub: LocalHub, browser: Browser, viewport: str) -> AsyncIterator[ConsoleTab]:
    """A console tab signed in as the administrator; the test fails on any console error or outside request."""
    async with console_tab(browser, hub.http_url, viewport) as tab:
        await tab.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
        yield tab
        tab.assert_clean()
