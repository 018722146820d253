"""A stored broker secret goes only where it was saved for: no editor can send it to a host of their choosing.

Without the binding, ``POST …/mqtt-config/test`` with another ``host`` (or a new configuration
with the password left out) sent the stored password to that host, where its owner could read it.
Here a listener stands in for the attacker's server and records whatever arrives: it must never
see the password, while the unchanged destination keeps working with the stored secret.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.integrations.conftest import mosquitto, pki  # noqa: F401 (fixtures)
from tests.integration.integrations.mosquitto import PASSWORD, USERNAME, Mosquitto
from tests.security.products import new_mqtt_config_url
from tests.support.served import LocalHub, hub_settings, serve_in_process

MESSAGE = (
    "changed, and a stored secret is used only with the host, port, username, protocol, transport and TLS settings "
    "it was saved for"
)


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[LocalHub]:
    settings = hub_settings(tmp_path, outbound_allow="127.0.0.0/8")
    async with serve_in_process(settings) as hub:
        yield hub


async def recorder() -> tuple[asyncio.Server, list[bytes]]:
    """A TCP server on 127.0.0.2 that keeps every byte sent to it (and answers nothing)."""
    received: list[bytes] = []

    async def keep(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.read(65536))
        writer.close()

    return await asyncio.start_server(keep, "127.0.0.2", 0), received


async def test_a_stored_password_is_reused_only_for_its_destination(
    running: LocalHub,
    mosquitto: Mosquitto,  # noqa: F811 (the fixture)
) -> None:
    broker: dict[str, Any] = {"host": "127.0.0.1", "port": mosquitto.tcp_port, "username": USERNAME}
    admin = running.client
    base = await new_mqtt_config_url(admin, "bound")
    assert (await admin.put(base, json={"broker": {**broker, "password": PASSWORD}})).status_code == 200

    assert (await admin.post(f"{base}/test", json=broker)).json()["connected"] is True  # same destination

    server, received = await recorder()
    async with server:
        port = server.sockets[0].getsockname()[1]
        moved: list[tuple[str, dict[str, Any]]] = [
            ("host", {**broker, "host": "127.0.0.2"}),
            ("port", {**broker, "port": port}),
            ("username", {**broker, "username": "someone-else"}),
            ("protocol", {**broker, "protocol": "5.0"}),
            ("transport", {**broker, "transport": "websockets"}),
            ("use_tls", {**broker, "use_tls": True}),
        ]
        for changed, body in moved:
            for kept in ({}, {"password": ""}, {"password": "***"}):
                for answer in (
                    await admin.post(f"{base}/test", json={**body, **kept}),
                    await admin.put(base, json={"broker": {**body, **kept}}),
                ):
                    assert answer.status_code == 422, answer.text
                    error = answer.json()
                    assert error["field"] == "broker.password"
                    assert error["detail"] == f"send password again: {changed} {MESSAGE}"
        attacker = {"host": "127.0.0.2", "port": port, "username": USERNAME}
        await admin.post(f"{base}/test", json={**attacker, "password": "typed-by-the-caller"})
    assert received  # the attacker's server was reached, with the caller's own password only
    assert not any(PASSWORD.encode() in chunk for chunk in received)
    assert any(b"typed-by-the-caller" in chunk for chunk in received)

    same = {**broker, "keep_alive": 30, "host": "127.0.0.1."}  # not a destination change
    saved = await admin.put(base, json={"broker": same})
    assert saved.status_code == 200, saved.text
    assert saved.json()["mqtt_config"]["broker"]["password"] == "***"
    assert (await admin.post(f"{base}/test", json=broker)).json()["connected"] is True
    removed = await admin.put(base, json={"broker": {**broker, "host": "127.0.0.2", "password": None}})
    assert removed.status_code == 200  # dropping the secret is always allowed
    assert removed.json()["mqtt_config"]["broker"]["password"] is None
