"""The full hub under test: ``mqtthub serve`` as its own process, seeded with devices and API tokens.

The hub runs exactly as a user starts it (broker with the database authenticator and topic
authorizer, telemetry sink and device observer, messaging recorder, integrations, HTTP API, the
credential revalidator) on a fresh SQLite database in a temporary directory, every port ephemeral.
Before it starts, :func:`seed` writes devices with one device token each and MQTT API tokens straight
into that database (hashed under the secret key the hub is then given), which is much quicker
than thousands of HTTP calls and stores the same rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path

from brokers import RunningBroker, _stop

SECRET_KEY = "bench-secret-key-" + "x" * 32
_MQTT_LINE = re.compile(rb"^MQTT listening on mqtt://[^:]+:(\d+)")

Credentials = tuple[str | None, str | None]


async def _seed(url: str, devices: int, api_tokens: int) -> tuple[list[Credentials], list[Credentials]]:
    from mqtthub.auth.credentials import new_api_token, new_device_token, token_hint
    from mqtthub.crypto import SecretBox
    from mqtthub.db import Database
    from mqtthub.db.base import new_id, utcnow
    from mqtthub.db.migrate import upgrade
    from mqtthub.models import Device, DeviceToken, MqttApiToken, Organization

    await upgrade(url)
    secrets = SecretBox(SECRET_KEY)
    device_credentials: list[Credentials] = []
    api_credentials: list[Credentials] = []
    async with Database(url) as database, database.session() as session:
        organization = Organization(name="bench", short_id="bench001")
        session.add(organization)
        await session.flush()
        # Ids made here, so the rows go in as one batch instead of a flush per device.
        device_rows = [Device(id=new_id(), organization_id=organization.id, name=f"d{n}") for n in range(devices)]
        session.add_all(device_rows)
        for device in device_rows:
            token = new_device_token()
            session.add(DeviceToken(device_id=device.id, token_hash=secrets.hash_token(token), hint=token_hint(token)))
            device_credentials.append((device.id, token))
        for n in range(api_tokens):
            token = new_api_token(organization.short_id)
            session.add(
                MqttApiToken(
                    organization_id=organization.id,
                    name=f"app{n}",
                    token_hash=secrets.hash_token(token),
                    hint=token_hint(token),
                    subscribe=["device/+/telemetry/#"],
                    publish=[],
                    expires_at=utcnow() + timedelta(days=1),
                )
            )
            api_credentials.append((token, token))
    return device_credentials, api_credentials


def seed(workdir: Path, devices: int, api_tokens: int) -> tuple[list[Credentials], list[Credentials]]:
    """Create the hub's database in ``workdir`` with ``devices`` devices and ``api_tokens`` API tokens.

    Returns the (user name, password) pairs that log them in.
    """
    return asyncio.run(_seed(database_url(workdir), devices, api_tokens))


def database_url(workdir: Path) -> str:
    """The SQLite database of a hub run in ``workdir``."""
    return f"sqlite+aiosqlite:///{workdir / 'mqtthub.db'}"


def _read_port(process: subprocess.Popen[bytes], timeout: float) -> int:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([process.stdout], [], [], remaining)[0]:
            raise RuntimeError("mqtthub serve did not print its MQTT port in time")
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"mqtthub serve exited with status {process.wait()}")
        match = _MQTT_LINE.match(line)
        if match:
            return int(match.group(1))


@contextlib.contextmanager
def started_hub(workdir: Path | None = None, env: Mapping[str, str] | None = None) -> Iterator[RunningBroker]:
    """Run ``mqtthub serve`` (anonymous access on, SQLite in ``workdir``); yield its PID and MQTT port."""
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mqtthub-bench-hub-")))
        environment = {key: value for key, value in os.environ.items() if not key.startswith("MQTTHUB_")} | {
            "MQTTHUB_HOST": "127.0.0.1",
            "MQTTHUB_HTTP_PORT": "0",
            "MQTTHUB_MQTT_PORT": "0",
            "MQTTHUB_WS_ENABLED": "false",
            "MQTTHUB_DATABASE_URL": database_url(workdir),
            "MQTTHUB_DATA_DIR": str(workdir),
            "MQTTHUB_SECRET_KEY": SECRET_KEY,
            "MQTTHUB_ALLOW_ANONYMOUS": "true",
            "MQTTHUB_ADMIN_PASSWORD": "bench-admin-password",
            "MQTTHUB_LOG_LEVEL": "warning",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "mqtthub", "serve"],
            cwd=workdir,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            bufsize=0,  # unbuffered: select() must not miss lines already read into a buffer
        )
        try:
            yield RunningBroker(process.pid, _read_port(process, 60))
        finally:
            _stop(process)
            if process.stdout is not None:
                process.stdout.close()
