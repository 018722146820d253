"""The test harness itself: settings become the hub's environment, setup calls work, no process outlives its test."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.support.access import USER_PASSWORD, api_token, login, new_org, request
from tests.support.hubproc import HubProcess, serve_process, settings_env
from tests.support.served import LocalHub


def test_settings_become_mqtthub_variables(tmp_path: Path) -> None:
    env = settings_env(allow_anonymous=True, mqtt_port=0, data_dir=tmp_path, admin_password=None, listed=["a"])
    assert env == {
        "MQTTHUB_ALLOW_ANONYMOUS": "true",
        "MQTTHUB_MQTT_PORT": "0",
        "MQTTHUB_DATA_DIR": str(tmp_path),
        "MQTTHUB_LISTED": '["a"]',
    }


async def test_setup_calls_give_working_sessions_and_tokens(sqlite_hub: LocalHub) -> None:
    admin = sqlite_hub.admin
    own = await sqlite_hub.acall(request("GET", f"/api/v1/organizations/{admin.org_id}", token=admin.token))
    assert own["short_id"] == admin.short_id
    member = await sqlite_hub.acall(new_org(admin, "Harness Org", role="org_member"))
    assert member.org_id != admin.org_id
    assert (await sqlite_hub.acall(login(sqlite_hub.http_url, member.email, USER_PASSWORD))).org_id == member.org_id
    async with member.async_http() as http:
        assert (await http.get(f"/api/v1/organizations/{admin.org_id}")).status_code == 403
    token = await sqlite_hub.acall(api_token(admin, subscribe=["a/#"], publish=[]))
    async with sqlite_hub.async_http(api_key=token) as app:
        assert (await app.post("/publish", json={"topic": "a/b", "payload": "x"})).status_code == 403
        assert (await app.post("/subscribe", json={"topic": "a/#"})).status_code == 200


def test_a_failing_test_leaves_no_hub_process_behind(tmp_path: Path) -> None:
    started: list[HubProcess] = []

    def failing_test() -> None:
        with serve_process(tmp_path) as hub:
            started.append(hub)
            raise RuntimeError("the test failed")

    with pytest.raises(RuntimeError):
        failing_test()
    (hub,) = started
    assert hub.process.returncode in (0, -signal.SIGTERM), hub.output  # ended, by SIGTERM first
