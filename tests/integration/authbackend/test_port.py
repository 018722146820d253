"""The auth backend on a port of its own (``MQTTHUB_AUTH_BACKEND_PORT``), and the body limit that guards it."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.integration.authbackend.world import SECRET, auth_backend_world


async def test_a_port_of_its_own_serves_the_same_paths_and_the_api_port_none(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
    async with auth_backend_world(url, tmp_path, auth_backend_port=0) as world:
        address = world.running.hub.auth_backend_address
        assert address is not None
        device = world.identity("device")
        login = {"username": device.username, "password": device.password, "clientid": "c1"}
        async with httpx.AsyncClient(base_url=f"http://{address[0]}:{address[1]}", auth=("b", SECRET)) as client:
            answer = await client.post("/auth-backend/emqx/authn", json=login)
            too_large = await client.post("/auth-backend/emqx/authn", json=login | {"password": "x" * 20_000})
            unauthenticated = await client.post("/auth-backend/emqx/authn", json=login, auth=("b", "wrong-secret!!"))
        on_api_port = await world.running.client.post("/auth-backend/emqx/authn", json=login)
    assert answer.json()["result"] == "allow"
    assert too_large.status_code == 413
    assert unauthenticated.status_code == 401
    assert on_api_port.status_code == 404
