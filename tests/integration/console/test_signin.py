"""Signing in and out of the console in Chromium, and where browsers and API clients land."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import Browser, expect

from tests.support.access import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.support.browser import console_tab
from tests.support.served import LocalHub


async def test_sign_in_shows_the_overview_and_sign_out_ends_the_session(
    hub: LocalHub, browser: Browser, viewport: str
) -> None:
    async with console_tab(browser, hub.http_url, viewport) as tab:
        page = tab.page
        await page.goto(tab.url("/ui"))
        await expect(page).to_have_url(re.compile(r"/ui/signin$"))
        tab.expect_error(r"status of 401")
        await page.get_by_label("E-mail").fill(ADMIN_EMAIL)
        await page.get_by_label("Password").fill("not the password")
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("alert")).to_contain_text("invalid e-mail or password")
        await page.get_by_label("Password").fill(ADMIN_PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page).to_have_url(re.compile(r"/ui/orgs/[^/]+$"))
        await expect(page.get_by_role("heading", level=1)).to_contain_text("Overview")
        # The figures arrive live from the hub.
        await expect(page.locator('[data-figure="clients"]')).to_have_text(re.compile(r"^\d+$"))
        overview = page.url
        cookies = {cookie["name"]: cookie for cookie in await page.context.cookies()}
        session = cookies["mqtthub_session"]
        assert session["httpOnly"] is True
        assert session["sameSite"] == "Strict"
        assert session["secure"] is False  # plain HTTP here; Secure behind TLS (see test_security)
        await page.get_by_role("button", name="Sign out").click()
        await expect(page).to_have_url(re.compile(r"/ui/signin$"))
        await page.goto(overview)
        await expect(page).to_have_url(re.compile(r"/ui/signin\?next="))
        tab.assert_clean()


async def test_browsers_are_sent_to_the_console_and_api_clients_keep_the_json(hub: LocalHub) -> None:
    async with httpx.AsyncClient(base_url=hub.http_url) as client:
        browser = await client.get("/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
        assert browser.status_code == 307
        assert browser.headers["location"] == "/ui"
        for accept in ("application/json", "*/*"):
            api = await client.get("/", headers={"Accept": accept})
            assert api.status_code == 200
            assert api.json()["service"] == "mqtthub"
            assert api.json()["links"]["console"] == "/ui"
