"""Login over real HTTP: session tokens, bad credentials, and the attempt limits."""

from __future__ import annotations

from pathlib import Path

import httpx

from mqtthub.auth.jwt import verify_session_token
from tests.support.access import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.support.served import LocalHub, hub_settings, serve_in_process


async def test_login_returns_a_bearer_token_that_opens_the_api(running_hub: LocalHub) -> None:
    async with httpx.AsyncClient(base_url=running_hub.http_url) as client:
        response = await client.post(
            "/api/v1/auth/login", json={"email": ADMIN_EMAIL.upper(), "password": ADMIN_PASSWORD}
        )
        assert response.status_code == 200
        body = response.json()
        assert body["token_type"] == "bearer"
        assert body["user"]["email"] == ADMIN_EMAIL
        assert body["user"]["role"] == "platform_admin"
        assert body["user"]["organization_id"]
        claims = verify_session_token(running_hub.hub.secrets.signing_key, body["token"])
        assert claims.user_id == body["user"]["id"]
        assert body["expires_at"].startswith(claims.expires_at.strftime("%Y-%m-%dT%H:%M:%S"))
        organizations = await client.get("/api/v1/organizations", headers={"Authorization": f"Bearer {body['token']}"})
        assert organizations.status_code == 200


async def test_wrong_password_and_unknown_user_are_401(running_hub: LocalHub) -> None:
    async with httpx.AsyncClient(base_url=running_hub.http_url) as client:
        for email, password in ((ADMIN_EMAIL, "wrong password"), ("nobody@example.com", ADMIN_PASSWORD)):
            response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
            assert response.status_code == 401
            assert response.json()["success"] is False
            assert response.json()["code"] == "unauthorized"
        missing = await client.post("/api/v1/auth/login", json={"email": ADMIN_EMAIL})
        assert missing.status_code == 422


async def test_management_endpoints_need_a_valid_bearer_token(running_hub: LocalHub) -> None:
    async with httpx.AsyncClient(base_url=running_hub.http_url) as client:
        none = await client.get("/api/v1/organizations")
        assert none.status_code == 401
        assert none.headers["WWW-Authenticate"] == "Bearer"
        forged = await client.get("/api/v1/organizations", headers={"Authorization": "Bearer abc.def.ghi"})
        assert forged.status_code == 401


async def test_login_attempts_are_limited_per_account(tmp_path: Path) -> None:
    settings = hub_settings(tmp_path, login_attempts_per_account=3)
    async with serve_in_process(settings) as running, httpx.AsyncClient(base_url=running.http_url) as client:
        statuses = []
        for _ in range(4):
            response = await client.post(
                "/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": "wrong password"}
            )
            statuses.append(response.status_code)
        assert statuses == [401, 401, 401, 429]
        assert int(response.headers["Retry-After"]) >= 1
        assert response.json()["code"] == "rate_limited"
        # Even the right password is refused while the account is limited.
        right = await client.post("/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        assert right.status_code == 429


async def test_login_attempts_are_limited_per_address(tmp_path: Path) -> None:
    settings = hub_settings(tmp_path, login_attempts_per_address=3)
    async with serve_in_process(settings) as running, httpx.AsyncClient(base_url=running.http_url) as client:
        statuses = [
            (
                await client.post("/api/v1/auth/login", json={"email": f"user{index}@example.com", "password": "x"})
            ).status_code
            for index in range(3)
        ]
        # The fixture's own administrator login was the first attempt from this address.
        assert statuses == [401, 401, 429]
