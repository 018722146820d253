"""A real hub in this process (HTTP on an ephemeral port) and an HTTP client logged in as its administrator."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from mqtthub.auth.ca import CA_CERT_NAME, CertificateAuthority
from mqtthub.config import Settings
from mqtthub.hub import Hub

ADMIN_EMAIL = "root@example.com"
ADMIN_PASSWORD = "correct horse battery"


@dataclass
class RunningHub:
    """A started hub, its HTTP base URL and a client with the administrator's session token."""

    hub: Hub
    base_url: str
    admin: httpx.AsyncClient

    async def login(self, email: str, password: str) -> httpx.AsyncClient:
        """A new client carrying a session token of ``email``."""
        response = await self.admin.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert response.status_code == 200, response.text
        return httpx.AsyncClient(
            base_url=self.base_url, headers={"Authorization": f"Bearer {response.json()['token']}"}, timeout=30
        )


def hub_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    """Settings of a test hub: every port ephemeral, a known administrator password."""
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "http_port": 0,
        "mqtt_port": 0,
        "mqtts_port": 0,
        "ws_port": 0,
        "wss_port": 0,
        "database_url": database_url,
        "data_dir": data_dir,
        "admin_email": ADMIN_EMAIL,
        "admin_password": ADMIN_PASSWORD,
    }
    return Settings(_env_file=None, **(values | overrides))


def tls_overrides(data_dir: Path) -> dict[str, Any]:
    """Settings for TLS and WSS listeners: the hub's CA is created in ``data_dir`` ahead of the hub, so a
    server certificate signed by it can be configured; clients verify the hub with ``data_dir/mqtthub-ca.pem``."""
    ca = CertificateAuthority.load_or_create(Settings(_env_file=None, data_dir=data_dir))
    server = ca.issue_server_certificate(("localhost",), ("127.0.0.1",))
    (data_dir / "server.pem").write_bytes(server.certificate_pem())
    (data_dir / "server.key").write_bytes(server.private_key_pem())
    return {"tls_cert_file": data_dir / "server.pem", "tls_key_file": data_dir / "server.key"}


def certificate_tls(bundle: bytes, password: str, data_dir: Path, name: str = "client") -> ssl.SSLContext:
    """A TLS client context presenting the certificate of a PKCS#12 bundle, trusting the hub's CA in ``data_dir``."""
    key, certificate, _ = pkcs12.load_key_and_certificates(bundle, password.encode())
    assert key is not None
    assert certificate is not None
    (data_dir / f"{name}.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (data_dir / f"{name}.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    tls = ssl.create_default_context(cafile=str(data_dir / CA_CERT_NAME))
    tls.load_cert_chain(data_dir / f"{name}.pem", data_dir / f"{name}.key")
    return tls


async def wait_until_serving(base_url: str) -> None:
    """Poll ``/health`` until the HTTP server answers."""
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as client:
        for _ in range(400):
            try:
                if (await client.get("/health")).status_code in (200, 503):
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.025)
    raise AssertionError("the hub's HTTP API did not come up")


@asynccontextmanager
async def start_hub(settings: Settings) -> AsyncIterator[RunningHub]:
    """Run a hub until the caller is done with it."""
    stop = asyncio.Event()
    async with Hub(settings) as hub:
        task = asyncio.create_task(hub.run(stop), name="test-hub")
        host, port = hub.http_address
        base_url = f"http://{host}:{port}"
        try:
            await wait_until_serving(base_url)
            async with httpx.AsyncClient(base_url=base_url, timeout=30) as anonymous:
                response = await anonymous.post(
                    "/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
                )
                assert response.status_code == 200, response.text
                token = response.json()["token"]
            async with httpx.AsyncClient(
                base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
            ) as admin:
                yield RunningHub(hub, base_url, admin)
        finally:
            stop.set()
            await task


@pytest.fixture
async def running_hub(database_url: str, tmp_path: Path) -> AsyncIterator[RunningHub]:
    """A hub on SQLite or PostgreSQL, serving HTTP on an ephemeral port."""
    async with start_hub(hub_settings(database_url, tmp_path)) as running:
        yield running
