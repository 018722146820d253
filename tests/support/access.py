"""Talking to a served test hub: accounts, MQTT connection parameters and the setup calls tests make over HTTP.

Each setup step (log in, create an organization with an administrator, create an MQTT API token, a device) is
written once as a *call*: a generator that yields the HTTP requests it needs and receives their responses. A
blocking test runs it with :func:`run_call`, an asyncio test with :func:`arun_call`, so the same steps serve a
hub in the test's own event loop (where a blocking request would deadlock) and a hub in a thread or a process.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from mqtthub.client import AsyncHubClient, HubClient

ADMIN_EMAIL = "root@example.com"
ADMIN_PASSWORD = "correct horse battery"
"""The platform administrator every test hub starts with (unless a test asks for the first-run password)."""
USER_PASSWORD = "long enough"
"""The password of the users the calls below create."""
HTTP_TIMEOUT = 30.0

T = TypeVar("T")


@dataclass(frozen=True)
class Request:
    """One HTTP request of a setup step, relative to the hub's base URL."""

    method: str
    path: str
    token: str | None = None
    json: object = None
    params: dict[str, Any] | None = None

    @property
    def options(self) -> dict[str, Any]:
        """Keyword arguments of ``httpx``'s ``request``: the session token's header, the JSON body, the query."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return {"headers": headers, "json": self.json, "params": self.params}


Call = Generator[Request, httpx.Response, T]
"""A setup step: yields requests, receives each response, returns its result."""


@dataclass(frozen=True)
class MqttParams:
    """Where and as whom an MQTT client connects (paho, aiomqtt, ``mosquitto_pub``)."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None

    def mosquitto_args(self) -> list[str]:
        """``-h``/``-p``/``-u``/``-P`` of Mosquitto's command-line clients."""
        args = ["-h", self.host, "-p", str(self.port)]
        if self.username is not None:
            args += ["-u", self.username]
        if self.password is not None:
            args += ["-P", self.password]
        return args


@dataclass(frozen=True)
class Account:
    """A user logged in to a served hub: its session token and its organization."""

    http_url: str
    email: str
    password: str
    token: str
    org_id: str
    short_id: str

    @property
    def headers(self) -> dict[str, str]:
        """The ``Authorization`` header of this session."""
        return {"Authorization": f"Bearer {self.token}"}

    def http(self) -> httpx.Client:
        """A blocking HTTP client carrying this session (for a hub in a thread or a process)."""
        return httpx.Client(base_url=self.http_url, headers=self.headers, timeout=HTTP_TIMEOUT)

    def async_http(self) -> httpx.AsyncClient:
        """An asyncio HTTP client carrying this session."""
        return httpx.AsyncClient(base_url=self.http_url, headers=self.headers, timeout=HTTP_TIMEOUT)

    def sdk(self) -> HubClient:
        """The project's blocking SDK client with this session."""
        return HubClient(self.http_url, token=self.token)

    def async_sdk(self) -> AsyncHubClient:
        """The project's asyncio SDK client with this session."""
        return AsyncHubClient(self.http_url, token=self.token)


def _json(response: httpx.Response, expect: int) -> Any:
    assert response.status_code == expect, (response.request.method, str(response.request.url), response.text)
    return response.json() if response.content else None


def request(
    method: str,
    path: str,
    *,
    token: str | None = None,
    expect: int = 200,
    json: object = None,
    params: dict[str, Any] | None = None,
) -> Call[Any]:
    """One request (with a session token when given) whose status must be ``expect``; returns its JSON body."""
    response = yield Request(method, path, token, json, params)
    return _json(response, expect)


def login(http_url: str, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> Call[Account]:
    """Log in with e-mail and password; the account knows its organization's id and short id."""
    body = yield from request("POST", "/api/v1/auth/login", json={"email": email, "password": password})
    org_id = str(body["user"]["organization_id"])
    organization = yield from request("GET", f"/api/v1/organizations/{org_id}", token=body["token"])
    return Account(http_url, email, password, body["token"], org_id, str(organization["short_id"]))


def new_org(admin: Account, name: str, *, role: str = "org_admin", short_id: str | None = None) -> Call[Account]:
    """A new organization and a logged-in user of it with ``role`` (created by a platform administrator)."""
    body: dict[str, str] = {"name": name} | ({"short_id": short_id} if short_id else {})
    organization = yield from request("POST", "/api/v1/organizations", token=admin.token, json=body, expect=201)
    email = f"{role.replace('_', '-')}@{organization['short_id']}.example"
    yield from user(admin, organization["id"], email, role=role)
    return (yield from login(admin.http_url, email, USER_PASSWORD))


def user(admin: Account, org_id: str, email: str, *, role: str = "org_member") -> Call[dict[str, Any]]:
    """A new user of the organization with :data:`USER_PASSWORD`."""
    body = {"email": email, "password": USER_PASSWORD, "role": role}
    created: dict[str, Any] = yield from request(
        "POST", f"/api/v1/organizations/{org_id}/users", token=admin.token, json=body, expect=201
    )
    return created


def api_token(
    account: Account,
    *,
    subscribe: Sequence[str] | None = None,
    publish: Sequence[str] | None = None,
    name: str = "test app",
) -> Call[str]:
    """A new MQTT API token of the account's organization with these topic filters (default: everything)."""
    permissions = {
        "subscribe": ["#"] if subscribe is None else list(subscribe),
        "publish": ["#"] if publish is None else list(publish),
    }
    created = yield from request(
        "POST",
        f"/api/v1/organizations/{account.org_id}/mqtt-tokens",
        token=account.token,
        json={"name": name, "permissions": permissions},
        expect=201,
    )
    return str(created["token"])


def run_call(client: httpx.Client, call: Call[T]) -> T:
    """Run a setup step with a blocking client."""
    try:
        pending = next(call)
        while True:
            pending = call.send(client.request(pending.method, pending.path, **pending.options))
    except StopIteration as done:
        result: T = done.value
        return result


async def arun_call(client: httpx.AsyncClient, call: Call[T]) -> T:
    """Run a setup step with an asyncio client."""
    try:
        pending = next(call)
        while True:
            pending = call.send(await client.request(pending.method, pending.path, **pending.options))
    except StopIteration as done:
        result: T = done.value
        return result
