"""Users and organizations in Chromium: add a user (problems under the field), change a role, remove one; a
platform administrator creates and deletes organizations; a member sees none of it and is refused when forcing."""

from __future__ import annotations

import re

from playwright.async_api import Browser, expect

from mqtthub.console.session import CSRF_FIELD
from tests.integration.console.actors import MEMBER_EMAIL, MEMBER_PASSWORD, add_member
from tests.integration.console.forms import signed_in
from tests.support.access import ADMIN_EMAIL
from tests.support.browser import ConsoleTab, console_tab
from tests.support.served import LocalHub

TEMP_EMAIL = "temp@example.com"


async def _add(tab: ConsoleTab, email: str, password: str) -> None:
    page = tab.page
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label(re.compile("^Initial password")).fill(password)
    await page.get_by_role("button", name="Add user").click()


async def test_add_change_and_remove_users(hub: LocalHub, admin_tab: ConsoleTab) -> None:
    page = admin_tab.page
    await admin_tab.open("Users")
    rows = page.locator("table.users tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows).to_contain_text(f"{ADMIN_EMAIL} (you)")

    admin_tab.expect_error("409")
    await _add(admin_tab, ADMIN_EMAIL, "long enough 1")
    await expect(page.locator("#user-email-error")).to_have_text("a user with this e-mail already exists")
    await expect(page.get_by_label("E-mail")).to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_label("E-mail")).to_have_value(ADMIN_EMAIL)

    await _add(admin_tab, MEMBER_EMAIL, MEMBER_PASSWORD)
    await expect(page.locator("#users")).to_contain_text(f"Added {MEMBER_EMAIL}")
    member = page.locator(f'tr[data-email="{MEMBER_EMAIL}"]')
    await expect(member.locator('[data-field="role"]')).to_have_text("Member (reads)")
    await expect(page.locator("#user-email-error")).to_have_count(0)

    await member.get_by_label(f"Role of {MEMBER_EMAIL}").select_option("org_admin")
    await member.get_by_role("button", name="Change").click()
    await expect(member.locator('[data-field="role"]')).to_have_text("Administrator")
    await member.get_by_label(f"Role of {MEMBER_EMAIL}").select_option("org_member")
    await member.get_by_role("button", name="Change").click()
    await expect(member.locator('[data-field="role"]')).to_have_text("Member (reads)")

    await _add(admin_tab, TEMP_EMAIL, "temporary password")
    await expect(rows).to_have_count(3)
    await page.get_by_role("button", name=f"Remove {TEMP_EMAIL}").click()
    await expect(page.locator("#users")).to_contain_text(f"Removed {TEMP_EMAIL}.")
    await expect(rows).to_have_count(2)
    login = {"email": TEMP_EMAIL, "password": "temporary password"}
    assert (await hub.client.post("/api/v1/auth/login", json=login)).status_code == 401


async def test_create_and_delete_an_organization(hub: LocalHub, admin_tab: ConsoleTab) -> None:
    page = admin_tab.page
    await admin_tab.open("Organizations")
    rows = page.locator("table.organizations tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows).to_contain_text("yours")

    admin_tab.expect_error("422")
    await page.get_by_label("Name").fill("Acme")
    await page.get_by_label(re.compile("^Short id")).fill("BAD!")
    await page.get_by_role("button", name="Create organization").click()
    await expect(page.locator("#org-short-id-error")).to_contain_text("6-10 lowercase letters and digits")

    await page.get_by_label(re.compile("^Short id")).fill("acme0001")
    await page.get_by_role("button", name="Create organization").click()
    await expect(page.locator("#organizations")).to_contain_text("Created Acme (acme0001).")
    acme = page.locator('tr[data-short-id="acme0001"]')
    await expect(acme).to_contain_text("Acme")

    await acme.get_by_role("button", name="Delete Acme").click()
    await expect(page.locator("#organizations")).to_contain_text("Deleted Acme.")
    await expect(rows).to_have_count(1)
    assert (await hub.client.get("/api/v1/organizations")).json()["count"] == 1


async def test_a_member_sees_no_admin_actions(hub: LocalHub, browser: Browser, viewport: str) -> None:
    org = str((await hub.client.get("/api/v1/organizations")).json()["organizations"][0]["id"])
    await add_member(hub, org)
    async with console_tab(browser, hub.http_url, viewport) as tab:
        page = tab.page
        await tab.sign_in(MEMBER_EMAIL, MEMBER_PASSWORD)
        nav = page.get_by_role("navigation", name="Main")
        await expect(nav.get_by_role("link", name="Users")).to_be_visible()
        await expect(nav.get_by_role("link", name="MQTT API tokens")).to_have_count(0)
        await expect(nav.get_by_role("link", name="Organizations")).to_have_count(0)
        await tab.open("Users")
        await expect(page.locator("table.users")).to_contain_text(ADMIN_EMAIL)
        await expect(page.get_by_role("button", name="Add user")).to_have_count(0)
        await expect(page.get_by_role("button", name=re.compile("^(Remove|Change)"))).to_have_count(0)
        await tab.open("Broker")
        await expect(page.get_by_role("heading", name="Connected clients")).to_be_visible()
        tab.expect_error("403")
        refused = await page.goto(tab.url(f"/ui/orgs/{org}/organizations"))
        assert refused is not None
        assert refused.status == 403
        tab.assert_clean()


async def test_a_member_is_refused_when_forcing(hub: LocalHub) -> None:
    org = str((await hub.client.get("/api/v1/organizations")).json()["organizations"][0]["id"])
    await add_member(hub, org)
    admin_id = next(
        user["id"]
        for user in (await hub.client.get(f"/api/v1/organizations/{org}/users")).json()["users"]
        if user["email"] == ADMIN_EMAIL
    )
    async with signed_in(hub, MEMBER_EMAIL, MEMBER_PASSWORD) as (client, csrf):
        base = f"/ui/orgs/{org}"
        forced = {
            f"{base}/users": {"email": "x@example.com", "password": "long enough 1"},
            f"{base}/users/{admin_id}/role": {"role": "org_member"},
            f"{base}/users/{admin_id}/remove": {},
            f"{base}/organizations": {"name": "Sneaky"},
            f"{base}/organizations/{org}/delete": {},
        }
        for url, form in forced.items():
            assert (await client.post(url, data=form | {CSRF_FIELD: csrf})).status_code == 403, url
    member = await hub.login(MEMBER_EMAIL, MEMBER_PASSWORD)
    async with member:
        assert (await member.delete(f"/api/v1/organizations/{org}/users/{admin_id}")).status_code == 403
    listed = (await hub.client.get(f"/api/v1/organizations/{org}/users")).json()
    assert listed["count"] == 2
    assert (await hub.client.get("/api/v1/organizations")).json()["count"] == 1
    # The API removes a user as the console does; nobody removes themselves.
    member_id = next(user["id"] for user in listed["users"] if user["email"] == MEMBER_EMAIL)
    assert (await hub.client.delete(f"/api/v1/organizations/{org}/users/{admin_id}")).status_code == 422
    assert (await hub.client.delete(f"/api/v1/organizations/{org}/users/{member_id}")).status_code == 204
    assert (await hub.client.delete(f"/api/v1/organizations/{org}/users/{member_id}")).status_code == 404
