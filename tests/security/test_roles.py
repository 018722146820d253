"""Every route declares who may use it, and the hub enforces it for every role over real HTTP.

The application's routes are walked: one without a declared operation fails the test (and the hub
refuses it to everyone). Then each role (platform admin, org admin, org member, API token, device)
calls every route: where the matrix says no, the answer is 403 before the route even reads the body;
where it says yes, never 401 or 403. Without a credential, every non-public route answers 401 (the web
console's routes, whose credential is the session cookie, send the browser to the sign-in page instead).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from fastapi.routing import APIRoute, APIWebSocketRoute

from mqtthub.auth.cookie import SESSION_COOKIE
from mqtthub.auth.roles import MATRIX, ROUTES, Operation, Role, matrix_table
from mqtthub.console.session import CSRF_HEADER, PREFIX, csrf_token
from tests.support.served import LocalHub, hub_settings, serve_in_process

FAKE = str(uuid.UUID(int=1))
CONSOLE = PREFIX
PATH_VALUES = {
    "device_id": FAKE,
    "user_id": FAKE,
    "token_id": FAKE,
    "product_id": FAKE,
    "subscription_id": FAKE,
    "command_id": FAKE,
    "definition_id": "999999",
    "serial": "ab12",
    "secret": "no-such-download",
    "topic": "some-topic",
    "client_id": "no-such-client",
    "organization_id": FAKE,
    "sensor": "temperature",
    "name": "welcome",
    "action_index": "0",
}


def _routes(routes: list[Any]) -> Iterator[tuple[str, str]]:
    # FastAPI exposes included routers only through these objects; the test walks them as the app serves them.
    for route in routes:
        if isinstance(route, APIRoute):
            for method in sorted(route.methods or set()):
                yield method, route.path_format
        elif isinstance(route, APIWebSocketRoute):
            yield "WS", route.path_format
        elif hasattr(route, "effective_route_contexts"):
            for context in route.effective_route_contexts():
                starlette_route = context.starlette_route
                if isinstance(starlette_route, APIWebSocketRoute):
                    yield "WS", starlette_route.path_format
                else:
                    for method in sorted(context.methods or set()):
                        yield method, context.path_format


async def test_every_route_declares_an_operation(tmp_path: Path) -> None:
    async with serve_in_process(hub_settings(tmp_path)) as running:
        served = set(_routes(running.hub.http_app().routes))
    assert served, "no route found"
    undeclared = sorted(served - set(ROUTES))
    assert not undeclared, f"routes without an access policy in mqtthub.auth.roles.ROUTES: {undeclared}"
    stale = sorted(set(ROUTES) - served)
    assert not stale, f"policies of routes that do not exist: {stale}"


def test_readme_matrix_is_generated_from_the_policy() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    start = readme.index("<!-- roles:start -->\n") + len("<!-- roles:start -->\n")
    end = readme.index("<!-- roles:end -->")
    assert readme[start:end].strip() == matrix_table()


async def _credentials(running: LocalHub) -> tuple[dict[Role, dict[str, str]], dict[Role, dict[str, str]]]:
    """A bearer header per role, all in one organization, and the path values each role uses."""
    admin = running.client
    org = (await admin.post("/api/v1/organizations", json={"name": "Acme", "short_id": "acme0001"})).json()["id"]
    spare = (await admin.post("/api/v1/organizations", json={"name": "Spare", "short_id": "spare001"})).json()["id"]
    headers: dict[Role, dict[str, str]] = {}
    for role, email in ((Role.ORG_ADMIN, "boss@acme.test"), (Role.ORG_MEMBER, "member@acme.test")):
        body = {"email": email, "password": "long enough password", "role": role.name.lower()}
        assert (await admin.post(f"/api/v1/organizations/{org}/users", json=body)).status_code == 201
        login = await admin.post("/api/v1/auth/login", json={"email": email, "password": body["password"]})
        headers[role] = {"Authorization": f"Bearer {login.json()['token']}"}
    headers[Role.PLATFORM_ADMIN] = {"Authorization": admin.headers["Authorization"]}
    rights = {"subscribe": ["#"], "publish": ["#"]}
    token = await admin.post(f"/api/v1/organizations/{org}/mqtt-tokens", json={"name": "app", "permissions": rights})
    headers[Role.API_TOKEN] = {"Authorization": f"Bearer {token.json()['token']}"}
    device = (await admin.post(f"/api/v1/organizations/{org}/devices", json={"name": "sensor"})).json()["id"]
    device_token = (await admin.post(f"/api/v1/organizations/{org}/devices/{device}/tokens", json={})).json()
    headers[Role.DEVICE] = {"Authorization": f"Bearer {device_token['token']}"}
    # The platform administrator acts on a spare organization: its calls that succeed may delete it.
    # The device reports about itself; everyone else names objects that do not exist (404, no effect).
    values = {role: PATH_VALUES | {"org_id": org} for role in Role}
    values[Role.PLATFORM_ADMIN]["org_id"] = spare
    values[Role.DEVICE]["device_id"] = device
    return headers, values


def _credential(running: LocalHub, path: str, header: dict[str, str]) -> dict[str, Any]:
    """The role's credential as the route takes it: the API's header, or for the console its session cookie
    (with the session's CSRF token, so that the role gate is what answers)."""
    if not path.startswith(CONSOLE):
        return {"headers": header}
    token = header["Authorization"].removeprefix("Bearer ")
    csrf = csrf_token(running.hub.secrets.signing_key, token)
    return {"headers": {CSRF_HEADER: csrf, "Cookie": f"{SESSION_COOKIE}={token}"}}


async def test_each_role_gets_what_the_matrix_says(tmp_path: Path) -> None:
    async with serve_in_process(hub_settings(tmp_path)) as running:
        headers, values = await _credentials(running)
        http_routes = sorted((method, path) for method, path in ROUTES if method != "WS")
        wrong: list[str] = []
        async with httpx.AsyncClient(base_url=running.http_url, timeout=30) as client:
            # Refusals first: they have no effect, so every route is still there for the allowed calls.
            for allowed_pass in (False, True):
                for method, path in http_routes:
                    allowed = MATRIX[ROUTES[(method, path)]]
                    for role in Role:
                        if (role in allowed) is not allowed_pass:
                            continue
                        url = path.format(**values[role])
                        body: dict[str, Any] | None = {} if method in ("POST", "PUT", "PATCH") else None
                        response = await client.request(
                            method, url, json=body, **_credential(running, path, headers[role])
                        )
                        refused = response.status_code in (401, 403)
                        if allowed_pass and refused:
                            wrong.append(f"{role.value} refused {response.status_code} on {method} {path}")
                        if not allowed_pass and response.status_code != 403:
                            wrong.append(f"{role.value} got {response.status_code} on {method} {path}")
            for method, path in http_routes:
                if ROUTES[(method, path)] is Operation.PUBLIC:
                    continue
                body = {} if method in ("POST", "PUT", "PATCH") else None
                response = await client.request(method, path.format(org_id=FAKE, **PATH_VALUES), json=body)
                if path.startswith(CONSOLE):
                    # The console answers a visitor without a session with its sign-in page.
                    if response.status_code != 303 or not response.headers["location"].startswith(f"{CONSOLE}/signin"):
                        wrong.append(f"no credential got {response.status_code} on {method} {path}, not sign-in")
                elif response.status_code != 401:
                    wrong.append(f"no credential got {response.status_code} on {method} {path}")
        assert not wrong, "\n".join(wrong)


async def test_live_feeds_refuse_devices_and_serve_the_others(tmp_path: Path) -> None:
    async with serve_in_process(hub_settings(tmp_path)) as running:
        headers, _ = await _credentials(running)
        base = running.http_url.replace("http://", "ws://")
        for method, path in ROUTES:
            if method != "WS":
                continue
            for role in Role:
                token = headers[role]["Authorization"].removeprefix("Bearer ")
                url = f"{base}{path}?token={token}"
                if role in MATRIX[ROUTES[(method, path)]]:
                    async with websockets.connect(url, open_timeout=10):
                        pass
                else:
                    with pytest.raises(websockets.InvalidStatus) as refused:
                        async with websockets.connect(url, open_timeout=10):
                            pass
                    assert refused.value.response.status_code == 403
