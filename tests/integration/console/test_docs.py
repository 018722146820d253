"""``/docs`` and ``/redoc`` render in Chromium from the hub's own assets: no request leaves the hub."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from tests.support.browser import console_tab
from tests.support.served import LocalHub

REDOC_MS = 60_000
"""ReDoc lays out the whole API in the browser before it shows anything: far longer than a console page on a busy
two-core machine, and longer as the API grows."""


async def test_swagger_ui_and_redoc_work_offline(hub: LocalHub, browser: Browser, viewport: str) -> None:
    async with console_tab(browser, hub.http_url, viewport) as tab:
        page = tab.page
        await page.goto(tab.url("/docs"))
        await expect(page.locator(".swagger-ui .info .title")).to_contain_text("mqtthub")
        await expect(page.locator(".opblock-summary-path").first).to_be_visible()
        await page.goto(tab.url("/redoc"), timeout=REDOC_MS)
        await expect(page.locator("h1").first).to_contain_text("mqtthub", timeout=REDOC_MS)
        await expect(page.get_by_text("Service information").first).to_be_attached(timeout=REDOC_MS)
        tab.assert_clean()
