"""Helpers for tests against a real ``mqtthub serve`` process: log in and set up organizations over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.integration.telemetry.support import SeededDevice
from tests.support.hubproc import HubProcess, run_hub

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "telemetry-admin-pw"
SECRET_KEY = "telemetry-flows-secret-key-0123456789"


def hub_env(database_url: str) -> dict[str, str]:
    """Environment of a test hub on ``database_url``."""
    return {
        "MQTTHUB_DATABASE_URL": database_url,
        "MQTTHUB_ADMIN_EMAIL": ADMIN_EMAIL,
        "MQTTHUB_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "MQTTHUB_SECRET_KEY": SECRET_KEY,
        "MQTTHUB_LOG_LEVEL": "warning",
    }


@contextlib.contextmanager
def started_hub(workdir: Path, database_url: str) -> Iterator[HubProcess]:
    """A hub process serving HTTP and MQTT over TCP."""
    with run_hub(workdir, env=hub_env(database_url), wait_for=("HTTP API", "MQTT")) as hub:
        yield hub


@dataclass
class Admin:
    """An HTTP client logged in as the platform administrator."""

    http: httpx.AsyncClient
    token: str
    organization_id: str

    async def call(self, method: str, path: str, *, expect: int = 200, **kwargs: Any) -> Any:
        """Send a request with the session token and check the status."""
        response = await self.http.request(method, path, headers={"Authorization": f"Bearer {self.token}"}, **kwargs)
        assert response.status_code == expect, (response.status_code, response.text)
        return response.json() if response.content else None

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
    """Log in as the administrator of a fresh hub."""
    async with httpx.AsyncClient(base_url=hub.http_url, timeout=30) as http:
        response = await http.post("/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        assert response.status_code == 200, response.text
        body = response.json()
        organization_id = body["user"]["organization_id"]
        yield Admin(http, body["token"], organization_id)


async def short_id_of(admin: Admin, organization_id: str) -> str:
    """The organization's short id."""
    organization = await admin.call("GET", f"/api/v1/organizations/{organization_id}")
    return str(organization["short_id"])


async def poll(check: Any, timeout: float = 30.0) -> Any:
    """Await ``check()`` until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.1)
