"""Event subscriptions end to end: Mosquitto → connector → conditions → real SMTP, HTTP and MQTT targets."""

from __future__ import annotations

import asyncio
import json
from email import message_from_bytes
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

from mqtthub.db import Database
from mqtthub.integrations.schemas import EmailTemplateIn
from mqtthub.integrations.service import IntegrationService
from mqtthub.models import ActionFailure, EventSubscription, HistoryMessage
from tests.integration.integrations.conftest import publish, wait_until
from tests.integration.integrations.mosquitto import PASSWORD, USERNAME, Mosquitto
from tests.integration.integrations.seeding import SECRETS, seed, settings_for
from tests.integration.integrations.servers import http_recorder, smtp_server

TOPIC = "/v3/applications/ABC123/business-events"


async def subscribed(service: IntegrationService, product_id: str, count: int = 1) -> None:
    await wait_until(
        lambda: (status := service.status(product_id)) is not None and status.subscribed_topics_count == count,
        what="the connector's subscription",
    )


async def stats(database: Database, subscription_id: str) -> EventSubscription:
    async with database.session() as session:
        row = await session.get(EventSubscription, subscription_id)
        assert row is not None
        return row


def events(*items: dict[str, Any]) -> list[bytes]:
    return [json.dumps(item).encode() for item in items]


async def test_conditional_email_is_sent_only_when_the_condition_holds(
    tmp_path: Path, database: Database, mosquitto: Mosquitto
) -> None:
    template = EmailTemplateIn(
        subject="Payment {{ payment.id }} is {{ payment.status }}",
        body="Hello {{ event.customer }}, payment {{ payment.id }} is pending.",
        recipients=["{{ event.email }}"],
    )
    product_id, (subscription_id,) = await seed(
        database,
        mosquitto,
        [
            {
                "name": "payment_marked_as_pending",
                "actions": [
                    {
                        "type": "conditional_email",
                        "condition": "payment.status == 'pending'",
                        "template": "payment_pending",
                    }
                ],
            }
        ],
        templates={"payment_pending": template},
    )
    async with smtp_server() as mailbox:
        settings = settings_for(tmp_path, smtp_host="127.0.0.1", smtp_port=mailbox.port)
        async with IntegrationService(database, SECRETS, settings) as service:
            await subscribed(service, product_id)
            base = {"event": "payment_marked_as_pending", "customer": "Ana", "email": "ana@example.com"}
            await asyncio.to_thread(
                publish,
                mosquitto,
                TOPIC,
                events(
                    {**base, "payment": {"id": "P1", "status": "paid"}},
                    {**base, "payment": {"id": "P2", "status": "pending"}},
                    {**base, "event": "something_else", "payment": {"id": "P3", "status": "pending"}},
                ),
            )
            await wait_until(lambda: service.status(product_id).messages_received == 3, what="three messages")  # type: ignore[union-attr]
            await wait_until(lambda: len(mailbox.messages) >= 1, what="an e-mail")
            while (await stats(database, subscription_id)).messages_received < 2:
                await asyncio.sleep(0.05)
        assert len(mailbox.messages) == 1
        envelope = mailbox.messages[0]
        assert envelope.rcpt_tos == ["ana@example.com"]
        mail = message_from_bytes(envelope.content if isinstance(envelope.content, bytes) else b"")
        assert mail["Subject"] == "Payment P2 is pending"
        assert "payment P2 is pending" in mail.get_payload()
    row = await stats(database, subscription_id)
    assert (row.messages_received, row.actions_executed, row.actions_failed) == (2, 1, 0)
    assert row.last_message_at is not None


async def test_webhook_gets_the_templated_body_and_failures_are_logged(
    tmp_path: Path, database: Database, mosquitto: Mosquitto
) -> None:
    async with http_recorder() as hooks:
        url = f"http://127.0.0.1:{hooks.port}"
        product_id, (subscription_id,) = await seed(
            database,
            mosquitto,
            [
                {
                    "name": "distributor_successful_created_policy",
                    "actions": [
                        {
                            "type": "webhook",
                            "url": url + "/hooks/{{ event.policy_id }}",
                            "headers": {"X-Event": "{{ event.event }}"},
                            "body": {"policy": "{{ event.policy_id }}", "amount": "{{ event.amount }}", "note": "x"},
                            "retries": 1,
                        },
                        {"type": "store"},
                    ],
                }
            ],
        )
        hooks.statuses = [200, 503, 503]  # the second message fails twice (first try and one retry)
        settings = settings_for(tmp_path)
        async with IntegrationService(database, SECRETS, settings) as service:
            await subscribed(service, product_id)
            name = "distributor_successful_created_policy"
            await asyncio.to_thread(
                publish,
                mosquitto,
                TOPIC,
                events(
                    {"event": name, "policy_id": "P-1", "amount": 12.5},
                    {"event": name, "policy_id": "P-2", "amount": 3},
                    {"event": name, "policy_id": "P-3", "amount": 1},
                ),
            )
            await wait_until(lambda: len(hooks.requests) == 4, what="four webhook requests")
            row = await stats(database, subscription_id)
            while row.messages_received < 3:
                await asyncio.sleep(0.05)
                row = await stats(database, subscription_id)
    first = hooks.requests[0]
    assert (first.method, first.path) == ("POST", "/hooks/P-1")
    assert first.headers["x-event"] == name
    assert first.json() == {"policy": "P-1", "amount": 12.5, "note": "x"}
    assert [request.path for request in hooks.requests] == ["/hooks/P-1", "/hooks/P-2", "/hooks/P-2", "/hooks/P-3"]
    assert (row.messages_received, row.actions_executed, row.actions_failed) == (3, 5, 1)
    async with database.session() as session:
        failures = list(await session.scalars(select(ActionFailure)))
        stored = await session.scalar(select(func.count()).select_from(HistoryMessage))
    assert len(failures) == 1
    assert failures[0].action_type == "webhook"
    assert failures[0].action_index == 0
    assert "HTTP 503" in failures[0].error
    assert "after 2 attempts" in failures[0].error
    assert stored == 3  # the failing webhook did not stop the next action


async def test_republish_back_to_the_remote_broker(tmp_path: Path, database: Database, mosquitto: Mosquitto) -> None:
    product_id, _ = await seed(
        database,
        mosquitto,
        [
            {
                "name": "policy_created",
                "actions": [
                    {
                        "type": "republish",
                        "target": "remote",
                        "topic": "replies/{{ event.policy_id }}",
                        "payload": {"ok": True, "policy": "{{ event.policy_id }}"},
                        "qos": 1,
                    }
                ],
            }
        ],
    )
    received: list[tuple[str, bytes]] = []
    listener = paho.Client(CallbackAPIVersion.VERSION2, client_id="replies-listener")
    listener.username_pw_set(USERNAME, PASSWORD)
    listener.on_message = lambda client, userdata, message: received.append((message.topic, bytes(message.payload)))
    listener.connect("127.0.0.1", mosquitto.tcp_port)
    listener.subscribe("replies/#", qos=1)
    listener.loop_start()
    try:
        async with IntegrationService(database, SECRETS, settings_for(tmp_path)) as service:
            await subscribed(service, product_id)
            await asyncio.to_thread(publish, mosquitto, TOPIC, events({"event": "policy_created", "policy_id": "P9"}))
            await wait_until(lambda: received, what="the republished message")
    finally:
        listener.disconnect()
        listener.loop_stop()
    assert received == [("replies/P9", b'{"ok":true,"policy":"P9"}')]


async def test_disabled_subscription_does_nothing_and_counts_survive_a_restart(
    tmp_path: Path, database: Database, mosquitto: Mosquitto
) -> None:
    product_id, (active_id, disabled_id) = await seed(
        database,
        mosquitto,
        [
            {"name": "tick", "actions": [{"type": "store"}]},
            {
                "name": "tick",
                "enabled": False,
                "variables": {"application_id": "ABC123"},
                "actions": [{"type": "store"}],
            },
        ],
    )
    settings = settings_for(tmp_path)
    for round_number in (1, 2):
        async with IntegrationService(database, SECRETS, settings) as service:
            await subscribed(service, product_id)
            status = service.status(product_id)
            assert status is not None
            assert status.messages_received == 2 * (round_number - 1)
            await asyncio.to_thread(publish, mosquitto, TOPIC, events({"event": "tick"}, {"event": "tick"}))
            await wait_until(lambda: status.messages_received == 2 * round_number, what="two messages")  # noqa: B023
            while (await stats(database, active_id)).messages_received < 2 * round_number:
                await asyncio.sleep(0.05)
    active = await stats(database, active_id)
    disabled = await stats(database, disabled_id)
    assert (active.messages_received, active.actions_executed) == (4, 4)
    assert (disabled.messages_received, disabled.actions_executed) == (0, 0)


async def test_two_instances_split_a_shared_stream_without_loss_or_duplicates(
    tmp_path: Path, database: Database, mosquitto: Mosquitto
) -> None:
    product_id, (subscription_id,) = await seed(
        database, mosquitto, [{"name": "reading", "actions": [{"type": "store"}]}], use_shared=True
    )
    first = settings_for(tmp_path, integration_instance_id="one")
    second = settings_for(tmp_path, integration_instance_id="two")
    count = 200
    async with (
        IntegrationService(database, SECRETS, first) as one,
        IntegrationService(database, SECRETS, second) as two,
    ):
        await subscribed(one, product_id)
        await subscribed(two, product_id)
        assert one.status(product_id).client_id != two.status(product_id).client_id  # type: ignore[union-attr]
        await asyncio.to_thread(
            publish, mosquitto, TOPIC, events(*({"event": "reading", "seq": seq} for seq in range(count)))
        )

        def total() -> int:
            return one.status(product_id).messages_received + two.status(product_id).messages_received  # type: ignore[union-attr]

        await wait_until(lambda: total() == count, what=f"{count} messages across both instances")
        while (await stats(database, subscription_id)).messages_received < count:
            await asyncio.sleep(0.05)
        split = (one.status(product_id).messages_received, two.status(product_id).messages_received)  # type: ignore[union-attr]
    assert min(split) > 0, split
    async with database.session() as session:
        payloads = list(await session.scalars(select(HistoryMessage.payload)))
    sequences = sorted(json.loads(payload)["seq"] for payload in payloads)
    assert sequences == list(range(count))


async def test_domain_and_http_actions_call_their_endpoints(
    tmp_path: Path, database: Database, mosquitto: Mosquitto
) -> None:
    async with http_recorder() as api:
        base = f"http://127.0.0.1:{api.port}"
        product_id, (subscription_id,) = await seed(
            database,
            mosquitto,
            [
                {
                    "name": "distributor_successful_created_policy",
                    "actions": [
                        {"type": "activate_policy", "params": {"policy_id": "{{event.policy_id}}"}},
                        {
                            "type": "http",
                            "method": "GET",
                            "url": base + "/policies",
                            "params": {"id": "{{ event.policy_id }}", "n": "{{ event.n }}"},
                        },
                    ],
                }
            ],
        )
        settings = settings_for(tmp_path, integration_domain_actions_url=base + "/domain/")
        async with IntegrationService(database, SECRETS, settings) as service:
            await subscribed(service, product_id)
            message = {"event": "distributor_successful_created_policy", "policy_id": "P-5", "n": 2}
            await asyncio.to_thread(publish, mosquitto, TOPIC, events(message))
            await wait_until(lambda: len(api.requests) == 2, what="two calls")
    activate, lookup = api.requests
    assert (activate.method, activate.path, activate.json()) == (
        "POST",
        "/domain/activate_policy",
        {"policy_id": "P-5"},
    )
    assert (lookup.method, lookup.path) == ("GET", "/policies?id=P-5&n=2")
    row = await stats(database, subscription_id)
    while row.actions_executed < 2:
        await asyncio.sleep(0.05)
        row = await stats(database, subscription_id)
    assert row.actions_failed == 0
