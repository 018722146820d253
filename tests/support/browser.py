"""Chromium driven by Playwright against a served hub's web console.

Playwright drives Debian's ``chromium`` (``scripts/test`` installs it as root; without it a test is skipped
on a developer machine and fails in CI). Playwright never downloads a browser of its own.

:class:`ConsoleTab` watches everything the page does: a message logged at error level, an uncaught
exception, and any request (WebSockets included) to a host other than the hub are recorded as problems,
and :meth:`ConsoleTab.assert_clean` fails the test on them. Requests elsewhere are also aborted, so no
traffic leaves the machine. A test that provokes an error answer on purpose names it with
:meth:`ConsoleTab.expect_error`. Confirmation dialogs are accepted and their messages kept in
:attr:`ConsoleTab.confirmed`.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from playwright.async_api import (
    Browser,
    ConsoleMessage,
    Dialog,
    Page,
    Request,
    Route,
    WebSocket,
    async_playwright,
    expect,
)

from tests.conftest import require

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
WAIT_MS = 15_000
"""How long an action or an expectation waits: generous, for a loaded two-core machine."""
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
"""The widths every console flow runs at: a desktop, and a phone held upright (390 px)."""


def chromium_path() -> str:
    """Debian's chromium (skip without it on a developer machine, fail in CI)."""
    found = next((path for path in CHROMIUM if os.access(path, os.X_OK)), None)
    require(found is not None, "chromium (apt-get install chromium)")
    assert found is not None
    return found


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """A headless Chromium, closed afterwards."""
    expect.set_options(timeout=WAIT_MS)
    async with async_playwright() as playwright:
        # The tests run as root in CI, where Chromium's sandbox cannot start.
        browser = await playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class ConsoleTab:
    """A page of the console, and what went wrong on it."""

    page: Page
    base_url: str
    problems: list[str] = field(default_factory=list)
    expected: list[re.Pattern[str]] = field(default_factory=list)
    confirmed: list[str] = field(default_factory=list)
    """The messages of the confirmation dialogs the page asked, each accepted."""

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` on the hub."""
        return self.base_url + path

    def expect_error(self, pattern: str) -> None:
        """Do not count console errors matching ``pattern`` (an error answer the test provokes on purpose)."""
        self.expected.append(re.compile(pattern))

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not any(p.search(message.text) for p in self.expected):
            self.problems.append(f"console error: {message.text} at {message.location.get('url')}")

    async def _on_dialog(self, dialog: Dialog) -> None:
        # Every confirmation is accepted (a test clicks what it means to confirm); one handler for the tab's life,
        # so no dialog can arrive between a test's click and a handler it registered for it.
        self.confirmed.append(dialog.message)
        await dialog.accept()

    def _outside(self, url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob", "about"):
            return False
        return parts.netloc != urlsplit(self.base_url).netloc

    def _on_request(self, request: Request) -> None:
        if self._outside(request.url):
            self.problems.append(f"request to another host: {request.url}")

    def _on_websocket(self, websocket: WebSocket) -> None:
        if self._outside(websocket.url):
            self.problems.append(f"WebSocket to another host: {websocket.url}")

    async def _abort_outside(self, route: Route) -> None:
        await route.abort()

    def assert_clean(self) -> None:
        """Fail on any problem recorded so far."""
        assert not self.problems, "\n".join(self.problems)

    async def open(self, section: str) -> None:
        """Follow the main navigation's link to ``section`` ("Overview", "Devices", "Live messages")."""
        await self.page.get_by_role("navigation", name="Main").get_by_role("link", name=section).click()
        await self.page.wait_for_load_state()

    async def sign_in(self, email: str, password: str) -> None:
        """Sign in through the sign-in form and wait for the console's first page."""
        await self.page.goto(self.url("/ui"))
        await self.page.get_by_label("E-mail").fill(email)
        await self.page.get_by_label("Password").fill(password)
        await self.page.get_by_role("button", name="Sign in").click()
        await self.page.wait_for_url(re.compile(r".*/ui/orgs/[^/]+$"))


@asynccontextmanager
async def console_tab(browser: Browser, base_url: str, viewport: str) -> AsyncIterator[ConsoleTab]:
    """A fresh browser context (no cookies) and page on the hub at ``base_url``, watched for problems.

    The clipboard may be written and read, for the copy buttons.
    """
    context = await browser.new_context(viewport=VIEWPORTS[viewport], base_url=base_url)  # type: ignore[arg-type]
    await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)
    page = await context.new_page()
    tab = ConsoleTab(page, base_url)
    page.on("console", tab._on_console)
    page.on("dialog", tab._on_dialog)
    page.on("pageerror", lambda error: tab.problems.append(f"uncaught exception: {error}"))
    page.on("request", tab._on_request)
    page.on("websocket", tab._on_websocket)
    await context.route(tab._outside, tab._abort_outside)
    page.set_default_timeout(WAIT_MS)
    try:
        yield tab
    finally:
        await context.close()
