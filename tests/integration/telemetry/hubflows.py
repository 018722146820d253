"""Telemetry tests against a real ``mqtthub serve`` process: its settings, and devices set up over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import socketio
import websockets

from tests.integration.telemetry.support import SeededDevice
from tests.support.access import Account, arun_call, request
from tests.support.hubproc import HubProcess, serve_process

SECRET_KEY = "telemetry-flows-secret-key-0123456789"


@contextlib.contextmanager
def started_hub(workdir: Path, database_url: str, **overrides: Any) -> Iterator[HubProcess]:
    """A hub process on ``database_url`` serving HTTP and MQTT over TCP, logging warnings only."""
    with serve_process(
        workdir,
        wait_for=("MQTT",),
        database_url=database_url,
        secret_key=SECRET_KEY,
        log_level="warning",
        **overrides,
    ) as hub:
        yield hub


@dataclass
class Admin:
    """The administrator's session and an HTTP client without credentials (devices add their own)."""

    http: httpx.AsyncClient
    account: Account

    @property
    def token(self) -> str:
        """The session token."""
        return self.account.token

    @property
    def organization_id(self) -> str:
        """The administrator's own organization."""
        return self.account.org_id

    @property
    def short_id(self) -> str:
        """The short id of the administrator's organization."""
        return self.account.short_id

    async def call(
        self, method: str, path: str, *, expect: int = 200, json: object = None, params: dict[str, Any] | None = None
    ) -> Any:
        """Send a request with the session token and check the status; returns the JSON body."""
        call = request(method, path, token=self.token, expect=expect, json=json, params=params)
        return await arun_call(self.http, call)

    async def device(self, organization_id: str, short_id: str) -> SeededDevice:
        """A new device in the organization with a token and a ``temperature`` definition (20..30)."""
        base = f"/api/v1/organizations/{organization_id}/devices"
        device = await self.call("POST", base, json={"name": "sensor"}, expect=201)
        token = await self.call("POST", f"{base}/{device['id']}/tokens", json={"name": "t"}, expect=201)
        definition = await self.call(
            "POST",
            f"/api/v1/devices/{device['id']}/telemetry-definitions",
            json={"key": "temperature", "unit": "C", "minThreshold": 20, "maxThreshold": 30},
            expect=201,
        )
        return SeededDevice(organization_id, short_id, device["id"], token["token"], definition["data"]["id"])


@contextlib.asynccontextmanager
async def admin_client(hub: HubProcess) -> AsyncIterator[Admin]:
    """The administrator of a served hub, with an open HTTP client."""
    async with hub.async_http() as http:
        yield Admin(http, hub.admin)


async def poll(check: Any, timeout: float = 30.0) -> Any:
    """Await ``check()`` until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.1)


EVENTS = ("datastream", "telemetry", "status", "alert", "command")
"""The live event names."""


class StreamClient:
    """A ``/api/v1/stream`` client collecting every event it receives."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.events: list[dict[str, Any]] = []
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in self.connection:
                self.events.append(json.loads(raw))

    def of(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == event]

    async def close(self) -> None:
        await self.connection.close()
        await self._task


async def socketio_client(
    url: str, token: str, organization_id: str | None = None
) -> tuple[Any, list[tuple[str, Any]]]:
    """A Socket.IO client of the hub at ``url``, and the events it receives, as ``(name, data)``."""
    client = socketio.AsyncClient(reconnection=False)
    received: list[tuple[str, Any]] = []
    for name in EVENTS:
        client.on(name, lambda data, name=name: received.append((name, data)))
    auth = {"token": token} | ({"organization_id": organization_id} if organization_id else {})
    await client.connect(url, auth=auth, transports=["websocket"], wait_timeout=30)
    return client, received


async def stream_client(hub_url: str, admin: Admin, organization_id: str | None = None) -> StreamClient:
    """A ``/api/v1/stream`` client of the hub at ``hub_url`` following every topic (``#``), once ready."""
    url = hub_url.replace("http://", "ws://") + f"/api/v1/stream?token={admin.token}&topics=%23"
    if organization_id:
        url += f"&organization_id={organization_id}"
    connection = await websockets.connect(url)
    ready = json.loads(await asyncio.wait_for(connection.recv(), 30))
    assert ready["event"] == "ready"
    return StreamClient(connection)
