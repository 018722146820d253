"""``mqtthub pub|sub|messages|topics|stats`` as real processes against a running hub."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.integration.messaging.conftest import wait_for
from tests.support.access import api_token
from tests.support.served import ThreadedHub


def mqtthub(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MQTTHUB_")} | (env or {})
    environment["HOME"] = str(cwd) if cwd else environment.get("HOME", "/")
    return subprocess.run(
        [sys.executable, "-m", "mqtthub", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        cwd=cwd,
    )


def test_pub_messages_topics_stats_with_environment(shared_hub: ThreadedHub, tmp_path: Path) -> None:
    token = shared_hub.call(api_token(shared_hub.admin))
    env = {"MQTTHUB_URL": shared_hub.http_url, "MQTTHUB_API_KEY": token}
    with shared_hub.http(api_key=token) as client:
        client.post("/subscribe", json={"topic": "cli/#"})
    published = mqtthub("pub", "cli/temp", "45.2", "--qos", "1", "--json", env=env, cwd=tmp_path)
    assert published.returncode == 0, published.stderr
    assert json.loads(published.stdout)["topic"] == "cli/temp"
    table = mqtthub("pub", "cli/temp", "46.0", env=env, cwd=tmp_path)
    assert "published 4 bytes to cli/temp" in table.stdout

    listing = json.loads(mqtthub("messages", "--topic", "cli/#", "--json", env=env, cwd=tmp_path).stdout)
    assert [m["payload"] for m in listing["messages"]] == ["46.0", "45.2"]
    rendered = mqtthub("messages", "--topic", "cli/temp", "--limit", "1", env=env, cwd=tmp_path).stdout
    assert "cli/temp" in rendered
    assert "46.0" in rendered
    assert "1 of 2 messages" in rendered

    topics = json.loads(mqtthub("topics", "--json", env=env, cwd=tmp_path).stdout)
    assert "cli/temp" in [t["topic"] for t in topics["topics"]]
    assert "cli/#" in mqtthub("topics", env=env, cwd=tmp_path).stdout

    stats = json.loads(mqtthub("stats", "--json", env=env, cwd=tmp_path).stdout)
    assert stats["topic_counts"]["cli/temp"] == 2
    assert "total_messages" in mqtthub("stats", env=env, cwd=tmp_path).stdout


def test_flags_win_over_config_file(shared_hub: ThreadedHub, tmp_path: Path) -> None:
    token = shared_hub.call(api_token(shared_hub.admin))
    config = tmp_path / "client.toml"
    config.write_text(f'url = "{shared_hub.http_url}"\napi_key = "mqh_wrong"\n', encoding="utf-8")
    refused = mqtthub("stats", "--config", str(config), cwd=tmp_path)
    assert refused.returncode == 1
    assert "401" in refused.stderr
    accepted = mqtthub("stats", "--json", "--config", str(config), "--api-key", token, cwd=tmp_path)
    assert accepted.returncode == 0, accepted.stderr
    default_location = tmp_path / ".config" / "mqtthub" / "client.toml"
    default_location.parent.mkdir(parents=True)
    default_location.write_text(f'url = "{shared_hub.http_url}"\ntoken = "{token}"\n', encoding="utf-8")
    assert mqtthub("topics", "--json", cwd=tmp_path).returncode == 0
    missing = mqtthub("stats", "--config", str(tmp_path / "nope.toml"), cwd=tmp_path)
    assert missing.returncode == 2


def test_sub_prints_live_messages(shared_hub: ThreadedHub, tmp_path: Path) -> None:
    token = shared_hub.call(api_token(shared_hub.admin))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MQTTHUB_")} | {
        "MQTTHUB_URL": shared_hub.http_url,
        "MQTTHUB_TOKEN": token,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "mqtthub", "sub", "cli/live/#", "--count", "1", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        with shared_hub.http(api_key=token) as client:

            def delivered() -> bool:
                client.post("/publish", json={"topic": "cli/live/1", "payload": "hello"})
                time.sleep(0.2)
                return process.poll() is not None

            wait_for(delivered, "mqtthub sub to print a message and exit")
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    message = json.loads(stdout.splitlines()[0])
    assert (message["topic"], message["payload"]) == ("cli/live/1", "hello")


def test_unreachable_hub_fails_with_one_line(tmp_path: Path) -> None:
    result = mqtthub("stats", "--url", "http://127.0.0.1:9", "--api-key", "x", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("mqtthub: cannot reach the hub")


def test_sub_stops_cleanly_on_ctrl_c(shared_hub: ThreadedHub) -> None:
    token = shared_hub.call(api_token(shared_hub.admin))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MQTTHUB_")} | {
        "MQTTHUB_URL": shared_hub.http_url,
        "MQTTHUB_API_KEY": token,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "mqtthub", "sub"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        wait_for(lambda: shared_hub.http().get("/health").json()["websocket_connections"] >= 1, "sub to connect")
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    assert "listening on" in stderr
    assert "Traceback" not in stderr
