"""The console's session and CSRF protections, its shared login limits and its roles, over real HTTP."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
import websockets
from playwright.async_api import Browser, expect

from mqtthub.auth.cookie import SESSION_COOKIE
from mqtthub.auth.passwords import hash_password
from mqtthub.console.session import CSRF_FIELD, CSRF_HEADER
from mqtthub.models import User, UserRole
from tests.integration.console.actors import MEMBER_EMAIL, MEMBER_PASSWORD, add_member
from tests.integration.console.forms import CSRF_INPUT, signed_in
from tests.support.access import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.support.browser import console_tab
from tests.support.served import LocalHub, hub_settings, serve_in_process


async def _organization(hub: LocalHub) -> str:
    return str((await hub.client.get("/api/v1/organizations")).json()["organizations"][0]["id"])


async def test_changes_need_the_sessions_csrf_token(hub: LocalHub) -> None:
    org = await _organization(hub)
    async with signed_in(hub, ADMIN_EMAIL, ADMIN_PASSWORD) as (client, csrf):
        create = f"/ui/orgs/{org}/devices"
        assert (await client.post(create, data={"name": "no token"})).status_code == 403
        forged = await client.post(create, data={"name": "forged", CSRF_FIELD: "0" * 64})
        assert forged.status_code == 403
        assert "reload the page" in forged.text
        # A page of another site gets nothing from the cookie, even with the right token.
        other = await client.post(create, data={"name": "x", CSRF_FIELD: csrf}, headers={"Origin": "http://evil.test"})
        assert other.status_code == 303
        assert other.headers["location"].startswith("/ui/signin")
        assert (await hub.client.get(f"/api/v1/organizations/{org}/devices")).json()["count"] == 0
        made = await client.post(create, data={"name": "real", CSRF_FIELD: csrf})
        assert made.status_code == 303
        htmx = await client.post(create, data={"name": "by htmx"}, headers={CSRF_HEADER: csrf, "HX-Request": "true"})
        assert htmx.status_code == 303
        assert (await hub.client.get(f"/api/v1/organizations/{org}/devices")).json()["count"] == 2


async def test_sign_in_form_needs_its_own_token(hub: LocalHub) -> None:
    async with httpx.AsyncClient(base_url=hub.http_url) as client:
        answer = await client.post(
            "/ui/signin", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, CSRF_FIELD: "x"}
        )
        assert answer.status_code == 403
        assert SESSION_COOKIE not in answer.cookies


async def test_the_cookie_is_secure_behind_tls(hub: LocalHub) -> None:
    # A proxy on the same machine that ends TLS says so with X-Forwarded-Proto.
    async with httpx.AsyncClient(base_url=hub.http_url, headers={"X-Forwarded-Proto": "https"}, timeout=30) as client:
        form = await client.get("/ui/signin")
        token = CSRF_INPUT.search(form.text)
        assert token is not None
        cookie = form.headers["set-cookie"]
        data = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, CSRF_FIELD: token.group(1)}
        answer = await client.post("/ui/signin", data=data, headers={"Cookie": cookie.split(";", 1)[0]})
        assert answer.status_code == 303
        session = next(v for k, v in answer.headers.multi_items() if k == "set-cookie" and SESSION_COOKIE in v)
        assert "Secure" in session
        assert "HttpOnly" in session
        assert "SameSite=strict" in session


async def test_console_and_api_logins_share_their_limits(tmp_path: Path) -> None:
    settings = hub_settings(tmp_path, login_attempts_per_account=3)
    async with serve_in_process(settings) as hub, httpx.AsyncClient(base_url=hub.http_url, timeout=30) as client:
        for _ in range(3):
            form = await client.get("/ui/signin")
            token = CSRF_INPUT.search(form.text)
            assert token is not None
            data = {"email": ADMIN_EMAIL, "password": "wrong password", CSRF_FIELD: token.group(1)}
            assert (await client.post("/ui/signin", data=data)).status_code == 401
        api = await client.post("/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        assert api.status_code == 429


async def test_a_member_sees_no_admin_actions_and_is_refused_them(
    hub: LocalHub, browser: Browser, viewport: str
) -> None:
    org = await _organization(hub)
    await add_member(hub, org)
    device = (await hub.client.post(f"/api/v1/organizations/{org}/devices", json={"name": "meter"})).json()["id"]
    async with console_tab(browser, hub.http_url, viewport) as tab:
        page = tab.page
        await tab.sign_in(MEMBER_EMAIL, MEMBER_PASSWORD)
        await tab.open("Devices")
        await expect(page.get_by_role("link", name="meter")).to_be_visible()
        await expect(page.get_by_role("button", name="Create device")).to_have_count(0)
        await page.get_by_role("link", name="meter").click()
        await expect(page.get_by_role("heading", level=1)).to_have_text("meter")
        await expect(page.get_by_role("button", name="Delete device")).to_have_count(0)
        await expect(page.get_by_text("Device tokens")).to_have_count(0)
        await tab.open("Live messages")
        await expect(page.get_by_role("button", name="Publish")).to_have_count(0)
        await expect(page.locator("#org-switch")).to_have_count(0)
        # Forcing the actions anyway (with the session's own CSRF token): refused by the role gate.
        csrf = await page.locator("body").get_attribute("hx-headers")
        assert csrf is not None
        headers = {CSRF_HEADER: csrf.split('"')[3]}
        forced: tuple[tuple[str, dict[str, str | float | bool]], ...] = (
            (f"/ui/orgs/{org}/devices", {"name": "sneaky"}),
            (f"/ui/orgs/{org}/devices/{device}/delete", {}),
            (f"/ui/orgs/{org}/devices/{device}/tokens", {}),
            (f"/ui/orgs/{org}/live/publish", {"topic": "a/b", "payload": "x"}),
        )
        for path, form in forced:
            answer = await page.request.post(tab.url(path), form=form, headers=headers, max_redirects=0)
            assert answer.status == 403, path
        tab.assert_clean()
    assert (await hub.client.get(f"/api/v1/organizations/{org}/devices")).json()["count"] == 1


async def test_device_statuses_are_read_within_the_organization_only(hub: LocalHub) -> None:
    org = await _organization(hub)
    await add_member(hub, org)
    other = (await hub.client.post("/api/v1/organizations", json={"name": "Elsewhere"})).json()["id"]
    ours, theirs = [
        (await hub.client.post(f"/api/v1/organizations/{owner}/devices", json={"name": "meter"})).json()["id"]
        for owner in (org, other)
    ]
    async with signed_in(hub, MEMBER_EMAIL, MEMBER_PASSWORD) as (client, _):
        answer = await client.get(f"/ui/orgs/{org}/devices/statuses", params={"id": [ours, theirs]})
        assert answer.status_code == 200, answer.text
        assert [(status["deviceId"], status["online"]) for status in answer.json()["data"]] == [(ours, False)]
        assert (await client.get(f"/ui/orgs/{other}/devices/statuses", params={"id": theirs})).status_code == 403
        too_many = await client.get(f"/ui/orgs/{org}/devices/statuses", params={"id": [ours] * 51})
        assert too_many.status_code == 422


async def test_platform_admins_switch_organization(hub: LocalHub, browser: Browser, viewport: str) -> None:
    other = await hub.client.post("/api/v1/organizations", json={"name": "Zeta Works", "short_id": "zeta0001"})
    assert other.status_code == 201
    async with console_tab(browser, hub.http_url, viewport) as tab:
        page = tab.page
        await tab.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
        await page.get_by_label("Organization").select_option(label="Zeta Works")
        await expect(page).to_have_url(re.compile(rf"/ui/orgs/{other.json()['id']}$"))
        await expect(page.get_by_role("heading", level=1)).to_contain_text("Zeta Works")
        tab.assert_clean()


async def test_live_feeds_ignore_the_cookie_from_another_origin(hub: LocalHub) -> None:
    async with signed_in(hub, ADMIN_EMAIL, ADMIN_PASSWORD) as (client, _):
        cookie = f"{SESSION_COOKIE}={client.cookies[SESSION_COOKIE]}"
        base = hub.http_url.replace("http://", "ws://")
        host = hub.http_url.removeprefix("http://")
        async with websockets.connect(f"{base}/ws", additional_headers={"Cookie": cookie, "Origin": f"http://{host}"}):
            pass
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(
                f"{base}/ws", additional_headers={"Cookie": cookie, "Origin": "http://evil.test"}
            ):
                pass
        assert refused.value.response.status_code == 401


async def test_a_platform_admin_outside_every_organization_starts_at_the_oldest(hub: LocalHub) -> None:
    org = await _organization(hub)
    async with hub.hub.database.session() as session:
        session.add(
            User(
                email="operator@example.com",
                password_hash=hash_password("operator password"),
                role=UserRole.PLATFORM_ADMIN,
                organization_id=None,
            )
        )
    async with signed_in(hub, "operator@example.com", "operator password") as (client, _):
        home = await client.get("/ui")
        assert home.status_code == 303
        assert home.headers["location"] == f"/ui/orgs/{org}"
