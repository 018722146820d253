"""The Integrations pages in Chromium against a real Mosquitto: configure, test, connect, subscriptions, failures.

The hub may connect to 127.0.0.1 (``MQTTHUB_OUTBOUND_ALLOW``), where the test's Mosquitto listens with a
password; the connection tests are real connection attempts, the failures real failed actions.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from mqtthub.console.session import CSRF_FIELD
from tests.integration.console.actors import MEMBER_EMAIL, MEMBER_PASSWORD, add_member
from tests.integration.console.forms import signed_in
from tests.integration.integrations.conftest import mosquitto, pki, publish  # noqa: F401 (fixtures)
from tests.integration.integrations.mosquitto import (
    P12_PASSWORD,
    PASSWORD,
    USERNAME,
    Certificates,
    Mosquitto,
    free_ports,
)
from tests.support.access import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.support.browser import ConsoleTab
from tests.support.served import LocalHub, hub_settings, serve_in_process

TOPIC = "/v3/applications/ABC123/business-events"


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[LocalHub]:
    """A hub allowed to connect to this machine (where Mosquitto and the webhook targets are), reconnecting fast."""
    settings = hub_settings(
        tmp_path, outbound_allow="127.0.0.1", integration_reconnect_min=0.1, integration_reconnect_max=1.0
    )
    async with serve_in_process(settings) as running:
        yield running


async def _product(hub: LocalHub, name: str = "tyres") -> str:
    answer = await hub.client.post("/api/v1/products", json={"name": name, "description": "tyre insurance"})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def _configure(hub: LocalHub, product: str, broker: Mosquitto) -> None:
    body = {"broker": {"host": "127.0.0.1", "port": broker.tcp_port, "username": USERNAME, "password": PASSWORD}}
    answer = await hub.client.put(f"/api/v1/products/{product}/mqtt-config", json=body)
    assert answer.status_code == 200, answer.text


async def _org(hub: LocalHub) -> str:
    return str((await hub.client.get("/api/v1/organizations")).json()["organizations"][0]["id"])


async def _test_connection(page: Page) -> None:
    await page.get_by_role("button", name="Test connection").click()


async def test_configure_test_and_connect(hub: LocalHub, admin_tab: ConsoleTab, mosquitto: Mosquitto) -> None:  # noqa: F811
    page = admin_tab.page
    await admin_tab.open("Integrations")
    await expect(page.get_by_text("No products yet")).to_be_visible()
    await page.get_by_label("Name", exact=True).fill("tyres")
    await page.get_by_role("button", name="Create product").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("tyres")
    await expect(page.get_by_text("Not connected to any broker yet")).to_be_visible()
    product_page = page.url

    (closed_port,) = free_ports(1)
    await page.get_by_label("Host", exact=True).fill("127.0.0.1")
    await page.get_by_label("Port", exact=True).fill(str(closed_port))
    await page.get_by_label("User name", exact=True).fill(USERNAME)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await _test_connection(page)
    result = page.locator("#test-result")
    await expect(result).to_contain_text("Connection failed")
    await expect(result).to_contain_text("Broker unreachable")

    await page.get_by_label("Port", exact=True).fill(str(mosquitto.tcp_port))
    await page.get_by_label("Password", exact=True).fill("not the password")
    await _test_connection(page)
    await expect(result).to_contain_text("CONNACK code 5")

    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await _test_connection(page)
    await expect(result.locator('[data-field="latency"]')).to_have_text(re.compile(r"^\d+ ms$"))
    await expect(result).to_contain_text("Connected in")

    await page.get_by_role("button", name="Save configuration").click()
    await expect(page.locator('#connector-status [data-field="state"]')).to_have_text("connected")
    password = page.get_by_label("Password", exact=True)
    await expect(password).to_have_value("")
    await expect(password).to_have_attribute("placeholder", re.compile(r"^\*\*\* \(stored"))
    assert PASSWORD not in await page.content()

    # The stored password is used by a test whose password field is left blank.
    await _test_connection(page)
    await expect(result).to_contain_text("Connected in")

    admin_tab.expect_error("422")
    await page.get_by_label("Port", exact=True).fill("70000")
    await page.get_by_role("button", name="Save configuration").click()
    await expect(page.locator("#config-broker-port-error")).to_contain_text("less than or equal to 65535")
    await expect(page.get_by_label("Port", exact=True)).to_have_attribute("aria-invalid", "true")

    await page.goto(product_page)
    await page.get_by_role("button", name="Reconnect").click()
    await expect(page.get_by_text("Reconnection triggered")).to_be_visible()
    await expect(page.locator('#connector-status [data-field="state"]')).to_have_text("connected")
    products = (await hub.client.get("/api/v1/products")).json()["products"]
    assert [(each["name"], each["mqtt_configured"]) for each in products] == [("tyres", True)]


async def test_mutual_tls_with_an_uploaded_pkcs12(
    hub: LocalHub,
    admin_tab: ConsoleTab,
    mosquitto: Mosquitto,  # noqa: F811
    pki: Certificates,  # noqa: F811
) -> None:
    product = await _product(hub)
    page = admin_tab.page
    await page.goto(admin_tab.url(f"/ui/orgs/{await _org(hub)}/products/{product}"))
    await page.get_by_label("Host", exact=True).fill("127.0.0.1")
    await page.get_by_label("Port", exact=True).fill(str(mosquitto.mtls_port))
    await page.get_by_label("Use TLS").check()
    await page.get_by_label("Extra trusted CA certificates (PEM)").fill(pki.ca_pem)
    await _test_connection(page)
    result = page.locator("#test-result")
    await expect(result).to_contain_text("Connection failed")

    p12 = {"name": "client.p12", "mimeType": "application/x-pkcs12", "buffer": pki.client_p12}
    await page.get_by_label("Client certificate and key (PKCS#12 file)").set_input_files(p12)  # type: ignore[arg-type]
    await page.get_by_label("PKCS#12 password", exact=True).fill(P12_PASSWORD)
    await _test_connection(page)
    await expect(result).to_contain_text("Connected in")
    await page.get_by_role("button", name="Save configuration").click()
    await expect(page.locator('#connector-status [data-field="state"]')).to_have_text("connected")
    await expect(page.get_by_label("PKCS#12 password", exact=True)).to_have_attribute(
        "placeholder", re.compile(r"stored")
    )
    await expect(
        page.get_by_label("Remove the stored value (Client certificate and key (PKCS#12 file))")
    ).not_to_be_checked()


async def test_subscription_actions_show_their_errors_next_to_the_field(hub: LocalHub, admin_tab: ConsoleTab) -> None:
    product = await _product(hub)
    page = admin_tab.page
    await page.goto(admin_tab.url(f"/ui/orgs/{await _org(hub)}/products/{product}"))
    await page.get_by_label("Event name").fill("policy_created")
    await page.get_by_label(re.compile("^Topic variables")).fill("application_id=ABC123")
    await page.get_by_role("button", name="Create subscription").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("policy_created")
    await expect(page.get_by_text(TOPIC)).to_be_visible()
    await expect(page.get_by_text("No actions yet")).to_be_visible()
    subscription_page = page.url

    admin_tab.expect_error("422")
    await page.get_by_label("Type", exact=True).select_option("republish")
    await expect(page.get_by_label("Topic (template, no wildcards)")).to_be_visible()
    await expect(page.get_by_label("URL")).to_be_hidden()
    await page.get_by_label("Topic (template, no wildcards)").fill("alerts/{{ event.policy_id")
    await page.get_by_label("Condition (optional)").fill("event.amount >")
    await page.get_by_role("button", name="Add action").click()
    await expect(page.locator("#action-topic-error")).to_contain_text("invalid template")
    await expect(page.get_by_label("Topic (template, no wildcards)")).to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_label("Topic (template, no wildcards)")).to_have_value("alerts/{{ event.policy_id")

    await page.get_by_label("Condition (optional)").fill("event.amount > 100")
    await page.get_by_label("Topic (template, no wildcards)").fill("alerts/{{ event.policy_id }}")
    await page.get_by_role("button", name="Add action").click()
    rows = page.locator("table.actions tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows).to_contain_text("republish")
    await expect(rows).to_contain_text("event.amount > 100")

    await page.get_by_label("Type", exact=True).select_option("webhook")
    await page.get_by_label("URL").fill("https://hooks.example/x")
    await page.get_by_label(re.compile("^Headers")).fill("[1, 2]")
    await page.get_by_role("button", name="Add action").click()
    await expect(page.locator("#action-headers-error")).to_contain_text("must be a JSON object")

    listed = (await hub.client.get(f"/api/v1/products/{product}/mqtt-config/subscriptions")).json()
    (subscription,) = listed["subscriptions"]
    assert subscription["actions"] == [
        {
            "type": "republish",
            "condition": "event.amount > 100",
            "target": "local",
            "topic": "alerts/{{ event.policy_id }}",
            "qos": 0,
            "retain": False,
        }
    ]

    await page.goto(subscription_page)
    await rows.get_by_role("link", name="Edit").click()
    await expect(page.get_by_label("Type", exact=True)).to_have_value("republish")
    await page.get_by_label("QoS").select_option("1")
    await page.get_by_role("button", name="Save action").click()
    await expect(rows).to_contain_text('"qos": 1')

    await page.get_by_label("Type", exact=True).select_option("store")
    await page.get_by_role("button", name="Add action").click()
    await expect(rows).to_have_count(2)
    await expect(rows.nth(1).locator("td").nth(1)).to_have_text("store")
    await page.get_by_role("button", name="Move up action 2").click()
    await expect(rows.nth(0).locator("td").nth(1)).to_have_text("store")
    await expect(rows.nth(1).locator("td").nth(1)).to_have_text("republish")
    for _ in range(2):
        await rows.first.get_by_role("button", name="Remove").click()
        await page.wait_for_load_state()
    await expect(page.get_by_text("No actions yet")).to_be_visible()


async def test_email_templates_show_their_errors_next_to_the_field(hub: LocalHub, admin_tab: ConsoleTab) -> None:
    product = await _product(hub)
    page = admin_tab.page
    await page.goto(admin_tab.url(f"/ui/orgs/{await _org(hub)}/products/{product}"))
    await expect(page.get_by_text("No e-mail templates yet")).to_be_visible()
    admin_tab.expect_error("422")
    await page.get_by_label("Template name").fill("welcome")
    await page.get_by_label("Subject", exact=True).fill("Policy {{ event.policy_id")
    await page.get_by_label("Body", exact=True).fill("Dear {{ event.name }},\nwelcome.")
    await page.get_by_label(re.compile("^Recipients")).fill("{{ event.email }}\nops@example.com")
    await page.get_by_role("button", name="Save template").click()
    await expect(page.locator("#template-subject-error")).to_contain_text("invalid template")
    await expect(page.get_by_label("Body", exact=True)).to_have_value("Dear {{ event.name }},\nwelcome.")

    await page.get_by_label("Subject", exact=True).fill("Policy {{ event.policy_id }} created")
    await page.get_by_role("button", name="Save template").click()
    row = page.locator("table.email-templates tbody tr")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("ops@example.com")
    await row.get_by_role("link", name="Edit").click()
    await expect(page.get_by_label("Subject", exact=True)).to_have_value("Policy {{ event.policy_id }} created")
    listed = (await hub.client.get(f"/api/v1/products/{product}/email-templates")).json()["templates"]
    assert [(each["name"], each["recipients"]) for each in listed] == [
        ("welcome", ["{{ event.email }}", "ops@example.com"])
    ]
    await row.get_by_role("button", name="Delete").click()
    await expect(page.get_by_text("No e-mail templates yet")).to_be_visible()


async def test_stats_and_failure_log(hub: LocalHub, admin_tab: ConsoleTab, mosquitto: Mosquitto) -> None:  # noqa: F811
    product = await _product(hub)
    await _configure(hub, product, mosquitto)
    (closed_port,) = free_ports(1)
    action: dict[str, Any] = {"type": "webhook", "url": f"http://127.0.0.1:{closed_port}/hook", "retries": 0}
    body = {"name": "policy_created", "variables": {"application_id": "ABC123"}, "actions": [action]}
    created = await hub.client.post(f"/api/v1/products/{product}/mqtt-config/subscriptions", json=body)
    assert created.status_code == 201, created.text
    page = admin_tab.page
    await page.goto(admin_tab.url(f"/ui/orgs/{await _org(hub)}/products/{product}"))
    await expect(page.locator('#connector-status [data-field="state"]')).to_have_text("connected")
    await expect(page.locator('#connector-status [data-field="messages"]')).to_have_text("0")
    await asyncio.to_thread(publish, mosquitto, TOPIC, [b'{"event": "policy_created", "policy_id": "P-1"}'])

    failures = page.locator("table.failures tbody tr")
    row = page.locator("table.subscriptions tbody tr")
    # Counters and the failure log are written in batches: reload until the page was read after that write.
    for _ in range(100):
        await page.reload()
        if await failures.count() and await row.locator("td").nth(4).inner_text() == "1":
            break
        await page.wait_for_timeout(200)
    await expect(failures).to_have_count(1)
    await expect(failures).to_contain_text("policy_created")
    await expect(failures).to_contain_text("webhook")
    await expect(failures).to_contain_text(TOPIC)
    await expect(row.locator("td").nth(4)).to_have_text("1")
    await expect(row.locator("td").nth(6)).to_have_text("1")
    await expect(page.locator('#connector-status [data-field="messages"]')).to_have_text("1")


async def test_a_member_sees_no_admin_actions_and_is_refused_them(
    hub: LocalHub,
    mosquitto: Mosquitto,  # noqa: F811
) -> None:
    org = await _org(hub)
    product = await _product(hub)
    await _configure(hub, product, mosquitto)
    made = await hub.client.post(
        f"/api/v1/products/{product}/mqtt-config/subscriptions", json={"name": "policy_created"}
    )
    subscription = made.json()["subscription"]["id"]
    await add_member(hub, org)
    base = f"/ui/orgs/{org}/products/{product}"
    async with signed_in(hub, MEMBER_EMAIL, MEMBER_PASSWORD) as (client, csrf):
        listing = await client.get(f"/ui/orgs/{org}/products")
        assert listing.status_code == 200
        assert "tyres" in listing.text
        assert "Create product" not in listing.text
        shown = await client.get(base)
        assert shown.status_code == 200
        assert "127.0.0.1" in shown.text
        admin_only = ("Save configuration", "Test connection", "Reconnect", "Create subscription", "Save template")
        for text in (*admin_only, "Delete"):
            assert text not in shown.text
        assert PASSWORD not in shown.text
        assert (await client.get(f"{base}/mqtt-config/status")).status_code == 200
        sub_page = await client.get(f"{base}/subscriptions/{subscription}")
        assert sub_page.status_code == 200
        assert "Add action" not in sub_page.text
        broker = {"broker.host": "127.0.0.1", "broker.port": str(mosquitto.tcp_port)}
        forced = {
            f"/ui/orgs/{org}/products": {"name": "sneaky"},
            base: {"name": "renamed"},
            f"{base}/delete": {},
            f"{base}/mqtt-config": broker,
            f"{base}/mqtt-config/test": broker,
            f"{base}/mqtt-config/reconnect": {},
            f"{base}/mqtt-config/delete": {},
            f"{base}/subscriptions": {"name": "sneaky"},
            f"{base}/subscriptions/{subscription}/actions": {"type": "store"},
            f"{base}/subscriptions/{subscription}/delete": {},
            f"{base}/email-templates": {"name": "x", "subject": "s", "body": "b"},
            f"{base}/email-templates/welcome/delete": {},
        }
        for path, data in forced.items():
            answer = await client.post(path, data=data | {CSRF_FIELD: csrf})
            assert answer.status_code == 403, (path, answer.status_code)
    products = (await hub.client.get("/api/v1/products")).json()["products"]
    assert [each["name"] for each in products] == ["tyres"]
    listed = (await hub.client.get(f"/api/v1/products/{product}/mqtt-config/subscriptions")).json()
    assert [each["actions"] for each in listed["subscriptions"]] == [[]]


async def test_another_organizations_product_is_not_found(hub: LocalHub) -> None:
    org = await _org(hub)
    other = await hub.client.post("/api/v1/organizations", json={"name": "Other", "short_id": "other001"})
    answer = await hub.client.post("/api/v1/products", json={"name": "theirs", "organization_id": other.json()["id"]})
    theirs = answer.json()["id"]
    async with signed_in(hub, ADMIN_EMAIL, ADMIN_PASSWORD) as (client, csrf):
        assert (await client.get(f"/ui/orgs/{org}/products/{theirs}")).status_code == 404
        renamed = await client.post(f"/ui/orgs/{org}/products/{theirs}", data={"name": "mine", CSRF_FIELD: csrf})
        assert renamed.status_code == 404
        assert "theirs" not in (await client.get(f"/ui/orgs/{org}/products")).text
    assert (await hub.client.get(f"/api/v1/products/{theirs}")).json()["name"] == "theirs"


async def test_the_forms_work_without_javascript(hub: LocalHub, mosquitto: Mosquitto) -> None:  # noqa: F811
    org = await _org(hub)
    product = await _product(hub)
    base = f"/ui/orgs/{org}/products/{product}"
    typed = {
        "broker.host": "127.0.0.1",
        "broker.port": str(mosquitto.tcp_port),
        "broker.protocol": "5.0",
        "broker.transport": "tcp",
        "broker.username": USERNAME,
        "broker.password": PASSWORD,
        "topics.prefix": "/v3/applications",
        "topics.pattern": "{application_id}/business-events",
        "topics.shared_group": "bre",
        "topics.qos": "1",
        "topics.event_field": "event",
    }
    async with signed_in(hub, ADMIN_EMAIL, ADMIN_PASSWORD) as (client, csrf):
        tested = await client.post(f"{base}/mqtt-config/test", data=typed | {CSRF_FIELD: csrf})
        assert tested.status_code == 200
        assert "Connected in" in tested.text
        assert PASSWORD not in tested.text  # the page shows what was typed, never a secret
        refused = await client.post(f"{base}/mqtt-config", data=typed | {"topics.qos": "3", CSRF_FIELD: csrf})
        assert refused.status_code == 422
        assert 'id="config-topics-qos-error"' in refused.text
        assert (await hub.client.get(f"/api/v1/products/{product}/mqtt-config")).json()["mqtt_config"] is None
        saved = await client.post(f"{base}/mqtt-config", data=typed | {CSRF_FIELD: csrf})
        assert saved.status_code == 303
        reconnected = await client.post(f"{base}/mqtt-config/reconnect", data={CSRF_FIELD: csrf})
        assert reconnected.status_code == 303
    stored = (await hub.client.get(f"/api/v1/products/{product}/mqtt-config")).json()["mqtt_config"]
    assert (stored["broker"]["protocol"], stored["broker"]["password"], stored["topics"]["qos"]) == ("5.0", "***", 1)
