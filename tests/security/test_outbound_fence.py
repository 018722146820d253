"""The outbound fence holds: integrations reach no loopback, private or link-local address the operator did not allow.

The operator allows ``127.0.0.1`` (the tests' own Mosquitto, SMTP and HTTP servers live
there). Everything else on the machine stays out of reach: another loopback address chosen
by the payload through a webhook template, ``[::1]``, a name resolving to loopback, a redirect
from an allowed server to a refused one, an SMTP relay, a broker configured or tested through
the API (with nothing allowed), and the cloud metadata address. Refusals are a 422 on save, an action failure with
its reason at run time, and ``/test`` answers without ever opening a connection.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from mqtthub.db import Database
from mqtthub.integrations.schemas import EmailTemplateIn
from mqtthub.integrations.service import IntegrationService
from mqtthub.models import ActionFailure
from tests.integration.integrations.conftest import database, mosquitto, pki, publish, wait_until  # noqa: F401 (fixtures)
from tests.integration.integrations.mosquitto import PASSWORD, USERNAME, Mosquitto
from tests.integration.integrations.seeding import SECRETS, seed, settings_for
from tests.integration.integrations.servers import http_recorder
from tests.security.products import new_mqtt_config_url
from tests.support.served import LocalHub, hub_settings, serve_in_process

TOPIC = "/v3/applications/ABC123/business-events"
REMEDY = "(allow it with MQTTHUB_OUTBOUND_ALLOW)"


async def redirecting_server(location: str) -> asyncio.Server:
    """An HTTP server on 127.0.0.1 that answers every request with a 307 to ``location``."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(f"HTTP/1.1 307 Temporary Redirect\r\nlocation: {location}\r\ncontent-length: 0\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", 0)


async def test_actions_cannot_reach_addresses_outside_the_allow_list(
    tmp_path: Path,
    database: Database,  # noqa: F811 (the fixture)
    mosquitto: Mosquitto,  # noqa: F811 (the fixture)
) -> None:
    async with http_recorder() as hooks:
        port = hooks.port
        redirect = await redirecting_server(f"http://127.0.0.2:{port}/stolen")
        redirect_port = redirect.sockets[0].getsockname()[1]
        actions: list[dict[str, Any]] = [
            {"type": "webhook", "url": f"http://{{{{ event.host }}}}:{port}/hook", "retries": 0},
            {"type": "webhook", "url": f"http://127.0.0.1:{redirect_port}/moved", "retries": 0},
            {"type": "email", "template": "alert"},
        ]
        template = EmailTemplateIn(subject="alert", body="x", recipients=["ops@example.com"])
        product_id, _ = await seed(
            database, mosquitto, [{"name": "probe", "actions": actions}], templates={"alert": template}
        )
        settings = settings_for(tmp_path, smtp_host="127.0.0.2", smtp_port=port)
        async with redirect, IntegrationService(database, SECRETS, settings) as service:
            await wait_until(lambda: (status := service.status(product_id)) is not None and status.connected)
            hosts = ["127.0.0.1", "127.0.0.2", "[::1]", "169.254.169.254", "10.0.0.1"]
            payloads = [json.dumps({"event": "probe", "host": host}).encode() for host in hosts]
            await asyncio.to_thread(publish, mosquitto, TOPIC, payloads)

            async def failures() -> list[ActionFailure]:
                async with database.session() as session:
                    return list(await session.scalars(select(ActionFailure).order_by(ActionFailure.id)))

            logged: list[ActionFailure] = []

            async def all_logged() -> bool:
                logged[:] = await failures()
                return len(logged) == 4 + 2 * len(hosts)

            while not await all_logged():
                await asyncio.sleep(0.05)
    by_index: dict[int, list[str]] = {}
    for row in logged:
        by_index.setdefault(row.action_index, []).append(row.error)
    payload_hosts = sorted(by_index[0])
    assert len(payload_hosts) == 4
    assert [request.path for request in hooks.requests] == ["/hook"]  # only the allowed 127.0.0.1
    moved = f"POST http://127.0.0.1:{redirect_port}/moved refused by outbound policy: 127.0.0.2 is a loopback address"
    assert by_index[1] == [f"{moved} {REMEDY}"] * len(hosts)  # the allowed server's redirect was not followed
    for host, text in (
        ("127.0.0.2", "127.0.0.2 is a loopback address"),
        ("[::1]", "::1 is a loopback address"),
        ("169.254.169.254", "169.254.169.254 is a link-local address"),
        ("10.0.0.1", "10.0.0.1 is a private address"),
    ):
        assert any(f"http://{host}:{port}/hook refused by outbound policy" in e and text in e for e in payload_hosts)
    assert all(
        e == f"SMTP server refused by outbound policy: 127.0.0.2 is a loopback address {REMEDY}" for e in by_index[2]
    )
    assert len(by_index[2]) == len(hosts)


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[LocalHub]:
    settings = hub_settings(tmp_path)  # nothing allowed
    async with serve_in_process(settings) as hub:
        yield hub


def refusal(response: httpx.Response) -> tuple[str, str]:
    """The field and the message of a 422."""
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "validation_error"
    return body["field"], body["detail"]


async def test_destinations_are_refused_on_save_and_test_reveals_no_ports(
    running: LocalHub,
    mosquitto: Mosquitto,  # noqa: F811 (the fixture)
) -> None:
    admin = running.client
    base = await new_mqtt_config_url(admin, "fenced")
    broker = {"host": "127.0.0.1", "port": mosquitto.tcp_port, "username": USERNAME, "password": PASSWORD}
    for host, kind in (
        ("127.0.0.1", "loopback"),
        ("localhost", "loopback"),  # a name is judged by the addresses it resolves to
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("192.168.1.10", "private"),
    ):
        field, message = refusal(await admin.put(base, json={"broker": {**broker, "host": host}}))
        assert field == "broker.host"
        assert message.endswith(f"is a {kind} address {REMEDY}")
    answers = []
    for port in (mosquitto.tcp_port, 1):  # an open port and a closed one answer alike
        tested = await admin.post(f"{base}/test", json={**broker, "host": "localhost", "port": port})
        answers.append(tested.json())
    assert answers[0] == answers[1]
    assert answers[0]["error"] == "Connection refused by outbound policy"
    assert answers[0]["details"].startswith("refused by outbound policy: localhost resolves to 127.0.0.1, which is a")
    assert (answers[0]["connected"], answers[0]["latency_ms"], answers[0]["code"]) == (False, None, None)

    metadata = {"type": "webhook", "url": "http://169.254.169.254/latest/meta-data/"}
    field, message = refusal(
        await admin.post(f"{base}/subscriptions", json={"name": "x", "actions": [{"type": "store"}, metadata]})
    )
    assert (field, message) == (
        "actions[1].url",
        f"refused by outbound policy: 169.254.169.254 is a link-local address {REMEDY}",
    )
    templated = {"type": "webhook", "url": "http://{{ event.host }}/hook"}  # judged when it runs
    assert (await admin.post(f"{base}/subscriptions", json={"name": "y", "actions": [templated]})).status_code == 201


async def test_a_stored_broker_outside_the_fence_is_never_connected(
    tmp_path: Path,
    database: Database,  # noqa: F811 (the fixture)
    mosquitto: Mosquitto,  # noqa: F811 (the fixture)
) -> None:
    """A configuration saved before the fence (or a name that now resolves elsewhere) is checked at each attempt."""
    product_id, _ = await seed(database, mosquitto, [{"name": "x", "actions": [{"type": "store"}]}])
    settings = settings_for(tmp_path, outbound_allow=None)
    async with IntegrationService(database, SECRETS, settings) as service:
        await wait_until(lambda: (status := service.status(product_id)) is not None and status.connection_error)
        status = service.status(product_id)
        assert status is not None
        assert (
            status.connection_error
            == f"Connection refused by outbound policy: 127.0.0.1 is a loopback address {REMEDY}"
        )
        assert not status.connected
