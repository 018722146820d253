"""EMQX 5's HTTP authentication and authorization contracts, against a real hub: the request bodies EMQX is
configured to send (JSON, form, GET query), its ``result`` answers and client attributes, and the identity matrix."""

from __future__ import annotations

import time

import httpx

from tests.integration.authbackend.world import LOGINS, SECRET, TOPICS, World

BASE = "/auth-backend/emqx"


def broker(world: World) -> httpx.AsyncClient:
    """A client as EMQX is configured: the secret in an Authorization header of its own."""
    return httpx.AsyncClient(base_url=world.backend_url, headers={"Authorization": f"Bearer {SECRET}"}, timeout=30)


async def test_logins_answer_as_the_embedded_broker(world: World) -> None:
    async with broker(world) as client:
        for name, expected in LOGINS.items():
            identity = world.identity(name)
            body = {
                "username": identity.username,
                "password": identity.password,
                "clientid": f"c-{name}",
                "peerhost": "192.0.2.7",
            }
            for response in (
                await client.post(f"{BASE}/authn", json=body),
                await client.get(f"{BASE}/authn", params=body),
            ):
                assert response.status_code == 200, (name, response.text)
                answer = response.json()
                assert answer["result"] == ("allow" if expected else "deny"), name
                if expected:
                    assert answer["is_superuser"] is False
                    assert answer["client_attrs"]["mountpoint"] == identity.mountpoint
                    assert all(isinstance(value, str) for value in answer["client_attrs"].values())


async def test_login_answers_carry_the_organization_and_expiry(world: World) -> None:
    app = world.identity("app")
    async with broker(world) as client:
        answer = (await client.post(f"{BASE}/authn", data={"username": app.username, "password": app.password})).json()
    assert answer["client_attrs"]["mountpoint"] == f"org/{world.short_id}/"
    assert answer["client_attrs"]["kind"] == "app"
    assert answer["client_attrs"]["organization"]
    assert 29 * 86400 < answer["expire_at"] - time.time() <= 30 * 86400


async def test_topic_matrix_inside_the_mountpoint(world: World) -> None:
    async with broker(world) as client:
        for case in TOPICS:
            identity = world.identity(case.identity)
            body = {
                "username": identity.username,
                "clientid": "c1",
                "peerhost": "192.0.2.7",
                "action": case.action,
                "topic": case.written(world),
            }
            response = await client.post(f"{BASE}/authz", json=body)
            assert response.status_code == 200
            assert response.json() == {"result": "allow" if case.allowed else "deny"}, case


async def test_an_unknown_action_is_a_400_which_emqx_reads_as_ignore(world: World) -> None:
    device = world.identity("device")
    async with broker(world) as client:
        response = await client.post(f"{BASE}/authz", json={"username": device.username, "action": "all", "topic": "x"})
        missing = await client.post(f"{BASE}/authz", json={"username": device.username, "action": "publish"})
    assert response.status_code == 400
    assert missing.status_code == 400
    assert "topic" in missing.json()["error"]
