"""``mqtthub org|device|token|cert`` as a user runs them: real processes on a real database."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12

from mqtthub.auth.broker_hooks import DatabaseAuthenticator
from mqtthub.broker.hooks import ConnectInfo
from mqtthub.config import Settings
from mqtthub.crypto import SecretBox, load_or_create_secret_key
from mqtthub.db import Database
from mqtthub.errors import AuthenticationRefused
from tests.support.postgres import free_port


def mqtthub(tmp_path: Path, *args: str, ok: bool = True) -> str:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MQTTHUB_")}
    env |= {"MQTTHUB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}", "MQTTHUB_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "mqtthub", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert (done.returncode == 0) is ok, done.stdout + done.stderr
    return done.stdout if ok else done.stderr


def value(output: str, label: str) -> str:
    match = re.search(rf"{re.escape(label)}: (\S+)", output)
    assert match, output
    return match.group(1)


async def authenticate(tmp_path: Path, username: str, password: str) -> str:
    settings = Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}", data_dir=tmp_path)
    secrets = SecretBox(load_or_create_secret_key(None, tmp_path))
    async with Database(settings.database_url) as database:
        info = ConnectInfo("c", username, password.encode(), 4, "tcp", "127.0.0.1:1")
        authenticator = DatabaseAuthenticator(database, secrets, settings)
        principal = await authenticator.authenticate(info)
        await authenticator.settle()  # before the database closes
    return principal.id


async def test_organizations_devices_tokens_and_certificates(tmp_path: Path) -> None:
    assert "is up to date" in mqtthub(tmp_path, "db", "upgrade", "--create")
    created = mqtthub(tmp_path, "org", "create", "Acme Corp", "--short-id", "acme0001")
    org_id = re.search(r"organization (\S+) \(short id acme0001\)", created)
    assert org_id
    assert "acme0001" in mqtthub(tmp_path, "org", "list")
    assert "taken" in mqtthub(tmp_path, "org", "create", "Again", "--short-id", "acme0001", ok=False)

    device = mqtthub(tmp_path, "device", "create", "boiler", "--org", "acme0001", "--metadata", '{"floor": 2}')
    device_id = value(device, "device id (MQTT user name)")
    device_token = value(device, "device token (MQTT password, shown only now)")
    assert device_id in mqtthub(tmp_path, "device", "list", "--org", org_id.group(1))
    assert await authenticate(tmp_path, device_id, device_token) == f"device:{device_id}"

    token = mqtthub(tmp_path, "token", "create", "dashboard", "--org", "acme0001", "--days", "7")
    token_id = value(token, "token id")
    secret = value(token, "token (shown only now)")
    assert secret.startswith("mqh_mqtt_acme0001_")
    listed = mqtthub(tmp_path, "token", "list", "--org", "acme0001")
    assert token_id in listed
    assert secret not in listed
    assert await authenticate(tmp_path, secret, secret) == f"token:{token_id}"
    mqtthub(tmp_path, "token", "revoke", token_id)
    with pytest.raises(AuthenticationRefused):
        await authenticate(tmp_path, secret, secret)
    assert "revoked" in mqtthub(tmp_path, "token", "list", "--org", "acme0001")

    bundle = tmp_path / "boiler.p12"
    issued = mqtthub(tmp_path, "cert", "issue", "--device", device_id, "--out", str(bundle))
    password = value(issued, "PKCS#12 password (shown only now)")
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o600
    key, certificate, _ = pkcs12.load_key_and_certificates(bundle.read_bytes(), password.encode())
    assert key is not None
    assert certificate is not None
    assert (tmp_path / "mqtthub-ca.pem").exists()
    assert "exists" in mqtthub(tmp_path, "cert", "issue", "--device", device_id, "--out", str(bundle), ok=False)

    mqtthub(tmp_path, "device", "disable", device_id)
    with pytest.raises(AuthenticationRefused):
        await authenticate(tmp_path, device_id, device_token)


def test_bad_input_is_refused_with_one_line(tmp_path: Path) -> None:
    mqtthub(tmp_path, "db", "upgrade", "--create")
    assert "no organization" in mqtthub(tmp_path, "device", "create", "x", "--org", "nope", ok=False)
    assert "JSON" in mqtthub(tmp_path, "device", "create", "x", "--org", "nope", "--metadata", "{", ok=False)
    assert "no device" in mqtthub(tmp_path, "device", "disable", "nope", ok=False)
    assert "no MQTT API token" in mqtthub(tmp_path, "token", "revoke", "nope", ok=False)
    assert "exactly one" in mqtthub(tmp_path, "cert", "issue", "--out", str(tmp_path / "x.p12"), ok=False)


def test_no_database_is_created_by_accident(tmp_path: Path) -> None:
    """Run elsewhere than the hub's directory, the CLI says so in one line instead of making a new, empty hub."""
    refused = mqtthub(tmp_path, "org", "list", ok=False)
    assert refused.count("\n") == 1, refused
    assert "no such file" in refused
    assert "db upgrade --create" in refused
    assert sorted(path.name for path in tmp_path.iterdir()) == []
    refused = mqtthub(tmp_path, "db", "upgrade", ok=False)
    assert "no such file" in refused
    assert not (tmp_path / "hub.db").exists()
    mqtthub(tmp_path, "db", "upgrade", "--create")
    (tmp_path / "mqtthub.secret").unlink()
    refused = mqtthub(tmp_path, "org", "list", ok=False)
    assert "no secret key" in refused
    assert not (tmp_path / "mqtthub.secret").exists()


def test_unreachable_database_is_one_line_naming_it(tmp_path: Path) -> None:
    unused_tcp_port = free_port()
    url = f"postgresql+asyncpg://hub:s3cret-pw@127.0.0.1:{unused_tcp_port}/hub"
    for args in (("org", "list"), ("db", "upgrade")):
        env = {key: value for key, value in os.environ.items() if not key.startswith("MQTTHUB_")}
        env |= {"MQTTHUB_DATABASE_URL": url, "MQTTHUB_DATA_DIR": str(tmp_path), "MQTTHUB_SECRET_KEY": "k" * 40}
        done = subprocess.run(
            [sys.executable, "-m", "mqtthub", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 1
        assert "Traceback" not in done.stderr
        last = done.stderr.strip().splitlines()[-1]
        assert f"postgresql+asyncpg://hub:***@127.0.0.1:{unused_tcp_port}/hub cannot be opened" in last
        assert "s3cret-pw" not in done.stderr
