"""``mqtthub serve`` as a user runs it: a real process, real HTTP, real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.hubproc import FIRST_RUN, serve_process
from tests.support.postgres import free_port


def test_serve_answers_health_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    with serve_process(tmp_path, **FIRST_RUN) as hub:
        response = httpx.get(hub.http_url + "/health", timeout=10)
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "healthy"
        assert body["components"]["database"]["status"] == "up"
        assert body["uptime"] >= 0
        info = httpx.get(hub.http_url + "/", timeout=10).json()
        assert info["service"] == "mqtthub"
        assert "password:" in "\n".join(hub.stdout)
        assert httpx.get(hub.http_url + "/openapi.json", timeout=10).json()["info"]["title"] == "mqtthub"
        assert httpx.get(hub.http_url + "/docs", timeout=10).status_code == 200
        assert httpx.get(hub.http_url + "/redoc", timeout=10).status_code == 200
        took = hub.stop(signal.SIGINT)
        assert took < 5
        assert hub.process.returncode == 0
        time.sleep(0.2)
        assert "Traceback" not in "\n".join(hub.stderr)
    assert (tmp_path / "mqtthub.db").exists()
    assert oct((tmp_path / "mqtthub.secret").stat().st_mode & 0o777) == "0o600"


def test_generated_files_are_ignored_by_git(tmp_path: Path) -> None:
    """Run inside the repository, nothing the hub writes there (keys, CA, databases) gets committed."""
    with serve_process(tmp_path) as hub:
        httpx.get(hub.http_url + "/health", timeout=10)
        hub.stop(signal.SIGTERM)
    generated = sorted(path.name for path in tmp_path.iterdir())
    assert "mqtthub.secret" in generated
    assert "mqtthub-ca.key" in generated
    repository = Path(__file__).resolve().parents[2]
    for name in generated:
        ignored = subprocess.run(["git", "-C", str(repository), "check-ignore", "--no-index", "-q", name], check=False)
        assert ignored.returncode == 0, f"{name} is written by `mqtthub serve` but not covered by .gitignore"


def test_second_start_keeps_the_admin_and_prints_no_password(tmp_path: Path) -> None:
    with serve_process(tmp_path, **FIRST_RUN) as hub:
        hub.stop(signal.SIGTERM)
        assert hub.process.returncode == 0
    with serve_process(tmp_path, **FIRST_RUN) as hub:
        assert "password:" not in "\n".join(hub.stdout)
        hub.stop(signal.SIGTERM)


@pytest.mark.postgres
def test_serve_on_postgresql(tmp_path: Path, postgres_base_url: str) -> None:
    with serve_process(tmp_path, database_url=postgres_base_url + "/postgres") as hub:
        body = httpx.get(hub.http_url + "/health", timeout=10).json()
        assert body["components"]["database"]["dialect"] == "postgresql"
        assert hub.stop(signal.SIGTERM) < 5


def _run_cli(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("MQTTHUB_")}
    return subprocess.run(
        [sys.executable, "-m", "mqtthub", *args],
        cwd=tmp_path,
        env=environment | (env or {}),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_invalid_setting_exits_2_with_one_line(tmp_path: Path) -> None:
    result = _run_cli(tmp_path, "serve", env={"MQTTHUB_HTTP_PORT": "abc"})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "MQTTHUB_HTTP_PORT" in lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "mqtthub.db").exists()


def test_busy_port_is_a_clean_error(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    with serve_process(first) as hub:
        port = hub.port("HTTP API")
        result = _run_cli(
            second, "serve", "--http-port", str(port), env={"MQTTHUB_MQTT_PORT": "0", "MQTTHUB_WS_PORT": "0"}
        )
        assert result.returncode == 1
        assert "cannot start" in result.stderr
        assert "Traceback" not in result.stderr


def test_db_upgrade_and_version(tmp_path: Path) -> None:
    env = {"MQTTHUB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/x.db"}
    result = _run_cli(tmp_path, "db", "upgrade", "--create", env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "x.db").exists()
    version = _run_cli(tmp_path, "version")
    assert version.returncode == 0
    assert version.stdout.startswith("mqtthub ")


def test_database_problems_stop_serve_with_one_line(tmp_path: Path) -> None:
    missing = _run_cli(tmp_path, "serve", env={"MQTTHUB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/no/dir/x.db"})
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        f"mqtthub: database sqlite+aiosqlite:///{tmp_path}/no/dir/x.db: directory {tmp_path}/no/dir does not exist"
    ]
    port = free_port()
    url = f"postgresql+asyncpg://hub:s3cret-pw@127.0.0.1:{port}/hub"
    unreachable = _run_cli(tmp_path, "serve", env={"MQTTHUB_DATABASE_URL": url, "MQTTHUB_HTTP_PORT": "0"})
    assert unreachable.returncode == 1
    assert "Traceback" not in unreachable.stderr
    assert "s3cret-pw" not in unreachable.stderr + unreachable.stdout
    last = unreachable.stderr.strip().splitlines()[-1]
    assert last.startswith(f"mqtthub: cannot start: database postgresql+asyncpg://hub:***@127.0.0.1:{port}/hub cannot")
