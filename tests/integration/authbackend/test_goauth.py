"""The mosquitto-go-auth ``http`` backend contract, against a real hub: request formats (JSON and form), answers
(status code and ``{"ok", "error"}``), the identity matrix, protection and counters."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy import select

from mqtthub.auth.mqtt_tokens import revoke_api_token
from mqtthub.models import MqttApiToken
from tests.integration.authbackend.world import LOGINS, SECRET, TOPICS, World, auth_backend_world
from tests.support.served import hub_settings, serve_in_process

BASE = "/auth-backend/mosquitto"
_ACC = {"publish": 2, "subscribe": 4}


def broker(world: World, **kwargs: object) -> httpx.AsyncClient:
    """A client as go-auth is: the secret as the basic-auth password of the URL's user part."""
    return httpx.AsyncClient(base_url=world.backend_url, auth=("mosquitto", SECRET), timeout=30, **kwargs)  # type: ignore[arg-type]


async def test_logins_answer_as_the_embedded_broker_in_json_and_form(world: World) -> None:
    async with broker(world) as client:
        for name, expected in LOGINS.items():
            identity = world.identity(name)
            fields = {"username": identity.username, "password": identity.password, "clientid": f"c-{name}"}
            as_json = await client.post(f"{BASE}/user", json=fields)
            as_form = await client.post(f"{BASE}/user", data=fields)
            for response in (as_json, as_form):
                assert response.status_code == (200 if expected else 403), (name, response.text)
                assert response.json()["ok"] is expected, name
                assert (response.json()["error"] == "") is expected


async def test_topic_matrix_with_full_topics(world: World) -> None:
    async with broker(world) as client:
        for case in TOPICS:
            identity = world.identity(case.identity)
            topic = case.written(world)
            if topic.startswith("$share/"):
                group, _, plain = topic[len("$share/") :].partition("/")
                full = f"$share/{group}/{identity.mountpoint}{plain}"
            elif topic.startswith("$"):
                full = topic
            else:
                full = identity.mountpoint + topic
            fields = {"username": identity.username, "clientid": "c1", "topic": full, "acc": _ACC[case.action]}
            response = await client.post(f"{BASE}/acl", json=fields)
            assert response.status_code == (200 if case.allowed else 403), (case, full, response.text)
            assert response.json()["ok"] is case.allowed


async def test_topics_outside_the_organization_prefix_are_refused(world: World) -> None:
    device = world.identity("device")
    own = f"devices/{world.device_id}/datastream"
    async with broker(world) as client:
        for topic, allowed in (
            (f"org/{world.short_id}/{own}", True),
            (own, False),  # no prefix: the global namespace
            (f"org/{world.other_short_id}/{own}", False),
            (f"org/{world.short_id}/", False),
        ):
            fields = {"username": device.username, "clientid": "c1", "topic": topic, "acc": "2"}
            response = await client.post(f"{BASE}/acl", data=fields)
            assert response.json()["ok"] is allowed, topic


async def test_read_checks_follow_subscribe_rights_and_readwrite_needs_both(world: World) -> None:
    app = world.identity("app")
    telemetry = f"org/{world.short_id}/device/{world.device_id}/telemetry/temp"
    outbox = f"org/{world.short_id}/app/out/alerts"
    async with broker(world) as client:
        for topic, access, allowed in ((telemetry, 1, True), (outbox, 1, False), (outbox, 2, True), (outbox, 3, False)):
            fields = {"username": app.username, "clientid": "c1", "topic": topic, "acc": access}
            assert (await client.post(f"{BASE}/acl", json=fields)).json()["ok"] is allowed, (topic, access)


async def test_nobody_is_a_superuser(world: World) -> None:
    async with broker(world) as client:
        for name in ("admin", "device", "app"):
            response = await client.post(f"{BASE}/superuser", json={"username": world.identity(name).username})
            assert response.status_code == 403
            assert response.json()["ok"] is False


async def test_a_revoked_token_is_refused_at_once(world: World) -> None:
    app = world.identity("app")
    fields = {"username": app.username, "clientid": "c1", "topic": f"org/{world.short_id}/app/in/x", "acc": 4}
    async with broker(world) as client:
        assert (await client.post(f"{BASE}/acl", json=fields)).json()["ok"] is True
        hub = world.running.hub
        async with hub.database.session() as session:
            token_hash = hub.secrets.hash_token(app.username)
            token = (await session.scalars(select(MqttApiToken).where(MqttApiToken.token_hash == token_hash))).one()
            await revoke_api_token(session, token)
        assert (await client.post(f"{BASE}/acl", json=fields)).json()["ok"] is False
        login = {"username": app.username, "password": app.password, "clientid": "c1"}
        assert (await client.post(f"{BASE}/user", json=login)).status_code == 403


async def test_malformed_requests_are_answered_400(world: World) -> None:
    device = world.identity("device")
    async with broker(world) as client:
        for fields in (
            {"username": device.username, "topic": "x", "acc": "seven"},
            {"username": device.username, "topic": "x", "acc": 8},
            {"topic": "x", "acc": 2},
        ):
            response = await client.post(f"{BASE}/acl", json=fields)
            assert response.status_code == 400, fields
            assert response.json()["code"] == "bad_request"
        response = await client.post(f"{BASE}/user", content=b"{not json", headers={"content-type": "application/json"})
        assert response.status_code == 400
        response = await client.post(f"{BASE}/user", json=["a", "list"])
        assert response.status_code == 400


async def test_requests_without_the_secret_are_refused_and_counted(world: World) -> None:
    device = world.identity("device")
    fields = {"username": device.username, "password": device.password, "clientid": "c1"}
    base_url = world.backend_url
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as anonymous:
        missing = await anonymous.post(f"{BASE}/user", json=fields)
        wrong = await anonymous.post(f"{BASE}/user", json=fields, auth=("mosquitto", "not-the-secret-at-all"))
        bearer = await anonymous.post(f"{BASE}/user", json=fields, headers={"Authorization": f"Bearer {SECRET}"})
        for refused in (missing, wrong):
            assert refused.status_code == 401
            assert refused.json()["code"] == "unauthorized"
            assert "secret" in refused.json()["error"]
            assert refused.headers["www-authenticate"].startswith("Basic")
        assert bearer.status_code == 200
    metrics = (await world.running.client.get("/metrics")).text
    assert 'mqtthub_auth_backend_refused_requests_total{reason="secret"} 2.0' in metrics
    assert 'mqtthub_auth_backend_checks_total{check="user",contract="mosquitto",result="allow"} 1.0' in metrics
    assert "mqtthub_auth_backend_seconds_count" in metrics


async def test_callers_outside_the_allowed_networks_are_refused(database_url: str, tmp_path: Path) -> None:
    networks = "10.0.0.0/8, fd00::/8"
    async with (
        auth_backend_world(database_url, tmp_path, auth_backend_networks=networks) as world,
        broker(world) as client,
    ):
        response = await client.post(f"{BASE}/superuser", json={"username": "x"})
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


async def test_the_endpoints_are_off_without_a_secret(database_url: str, tmp_path: Path) -> None:
    async with serve_in_process(hub_settings(tmp_path, database_url=database_url)) as running:
        response = await running.client.post(f"{BASE}/user", json={"username": "x", "password": "y"})
    assert response.status_code == 404
