"""A device's certificates in Chromium: issue one, download its PKCS#12 bundle once, revoke it."""

from __future__ import annotations

from pathlib import Path

import httpx
from cryptography.hazmat.primitives.serialization import pkcs12
from playwright.async_api import expect

from mqtthub.console.session import CSRF_FIELD
from tests.integration.console.actors import MEMBER_EMAIL, MEMBER_PASSWORD, add_member
from tests.integration.console.forms import signed_in
from tests.support.browser import ConsoleTab
from tests.support.served import LocalHub


async def test_issue_download_once_and_revoke(hub: LocalHub, admin_tab: ConsoleTab) -> None:
    page = admin_tab.page
    org = page.url.rsplit("/", 1)[1]
    device_id = (await hub.client.post(f"/api/v1/organizations/{org}/devices", json={"name": "gate"})).json()["id"]
    await page.goto(admin_tab.url(f"/ui/orgs/{org}/devices/{device_id}"))
    await expect(page.get_by_text("No certificates issued for this device")).to_be_visible()
    await page.get_by_role("button", name="Issue certificate").click()
    link = page.get_by_role("link", name="Download the PKCS#12 bundle")
    await expect(link).to_be_visible()
    password = (await page.locator("#p12-password").inner_text()).strip()
    url = await link.get_attribute("href")
    assert url is not None
    async with page.expect_download() as info:
        await link.click()
    download = await info.value
    bundle = pkcs12.load_pkcs12(Path(await download.path()).read_bytes(), password.encode())
    assert bundle.cert is not None
    assert device_id in bundle.cert.certificate.subject.rfc4514_string()
    async with httpx.AsyncClient() as client:
        assert (await client.get(url)).status_code == 404  # once only

    row = page.locator("table.certificates tbody tr")
    await expect(row).to_have_count(1)
    await row.get_by_role("button", name="Revoke").click()
    await expect(row).to_contain_text("revoked")
    listed = (await hub.client.get(f"/api/v1/organizations/{org}/certificates")).json()["certificates"]
    assert [(c["device_id"], c["revoked_at"] is not None, c["downloaded"]) for c in listed] == [(device_id, True, True)]


async def test_a_member_cannot_issue_or_list(hub: LocalHub) -> None:
    org = str((await hub.client.get("/api/v1/organizations")).json()["organizations"][0]["id"])
    device_id = (await hub.client.post(f"/api/v1/organizations/{org}/devices", json={"name": "gate"})).json()["id"]
    await add_member(hub, org)
    async with signed_in(hub, MEMBER_EMAIL, MEMBER_PASSWORD) as (client, csrf):
        page = await client.get(f"/ui/orgs/{org}/devices/{device_id}")
        assert page.status_code == 200
        assert "certificates" not in page.text
        base = f"/ui/orgs/{org}/devices/{device_id}/certificates"
        assert (await client.get(base)).status_code == 403
        assert (await client.post(base, data={CSRF_FIELD: csrf})).status_code == 403
    assert (await hub.client.get(f"/api/v1/organizations/{org}/certificates")).json()["count"] == 0
