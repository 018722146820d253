"""A real hub served by uvicorn on ephemeral ports, running in its own thread and event loop.

The hub runs apart from the test's thread so that blocking clients (paho, the sync SDK,
the CLI) and asyncio clients (the async SDK, WebSocket clients) can all talk to it over
real sockets. Helpers create organizations and MQTT API tokens through the HTTP API.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from mqtthub.config import Settings
from mqtthub.hub import Hub

ADMIN_EMAIL = "root@example.com"
ADMIN_PASSWORD = "correct horse battery"
T = TypeVar("T")


@dataclass
class Org:
    """An organization and a session token of a user who manages it."""

    id: str
    short_id: str
    admin_token: str


@dataclass
class ThreadedHub:
    """A running hub: its URLs, and a way to run coroutines on its loop."""

    hub: Hub
    loop: asyncio.AbstractEventLoop
    url: str
    mqtt_port: int
    admin_token: str
    default_org: Org
    _orgs: int = field(default=0)

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[len("http") :] + "/ws"

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the hub's event loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(60)

    def http(self, token: str | None = None, api_key: str | None = None) -> httpx.Client:
        headers = {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if api_key:
            headers["X-API-Key"] = api_key
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def new_org(self, name: str) -> Org:
        """A second organization with an org admin of its own."""
        self._orgs += 1
        with self.http(self.admin_token) as admin:
            created = admin.post("/api/v1/organizations", json={"name": name})
            assert created.status_code == 201, created.text
            org = created.json()
            email = f"admin{self._orgs}@{org['short_id']}.example"
            user = admin.post(
                f"/api/v1/organizations/{org['id']}/users",
                json={"email": email, "password": ADMIN_PASSWORD, "role": "org_admin"},
            )
            assert user.status_code == 201, user.text
            login = admin.post("/api/v1/auth/login", json={"email": email, "password": ADMIN_PASSWORD})
            assert login.status_code == 200, login.text
        return Org(org["id"], org["short_id"], login.json()["token"])

    def api_token(self, org: Org, *, subscribe: list[str] | None = None, publish: list[str] | None = None) -> str:
        """A new MQTT API token of ``org`` with the given topic filters (default: everything)."""
        permissions = {
            "subscribe": ["#"] if subscribe is None else subscribe,
            "publish": ["#"] if publish is None else publish,
        }
        with self.http(org.admin_token) as admin:
            response = admin.post(
                f"/api/v1/organizations/{org.id}/mqtt-tokens", json={"name": "test app", "permissions": permissions}
            )
        assert response.status_code == 201, response.text
        token: str = response.json()["token"]
        return token

    def mqtt_client(self, token: str, on_message: Callable[[paho.MQTTMessage], None] | None = None) -> paho.Client:
        """A connected paho client authenticating with an MQTT API token (username = password = token)."""
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{time.monotonic_ns()}")
        client.username_pw_set(token, token)
        connected = threading.Event()
        client.on_connect = lambda c, u, f, reason, p: connected.set()
        if on_message is not None:
            client.on_message = lambda c, u, message: on_message(message)
        client.connect("127.0.0.1", self.mqtt_port)
        client.loop_start()
        assert connected.wait(30), "MQTT client did not connect"
        return client


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "http_port": 0,
        "mqtt_port": 0,
        "mqtts_port": 0,
        "ws_port": 0,
        "wss_port": 0,
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}",
        "data_dir": tmp_path,
        "admin_email": ADMIN_EMAIL,
        "admin_password": ADMIN_PASSWORD,
        "api_rate_limit": 0,
        "outbound_allow": "127.0.0.1",  # products may point at the hub's own broker
    }
    return Settings(_env_file=None, **(values | overrides))


@contextmanager
def threaded_hub(tmp_path: Path, **overrides: Any) -> Iterator[ThreadedHub]:
    """Start a hub in a thread, yield it once HTTP answers, stop it afterwards."""
    settings = settings_for(tmp_path, **overrides)
    started = threading.Event()
    box: dict[str, Any] = {}

    async def serve() -> None:
        stop = asyncio.Event()
        box["stop"] = stop
        try:
            async with Hub(settings) as hub:
                box["hub"] = hub
                box["loop"] = asyncio.get_running_loop()
                started.set()
                await hub.run(stop)
        except BaseException as exc:
            box["error"] = exc
            started.set()
            raise

    thread = threading.Thread(target=lambda: asyncio.run(serve()), name="test-hub", daemon=True)
    thread.start()
    assert started.wait(60), "the hub did not start"
    if "error" in box:
        raise box["error"]
    hub: Hub = box["hub"]
    host, port = hub.http_address
    url = f"http://{host}:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url + "/", timeout=5)
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline, "the hub's HTTP API did not come up"
            time.sleep(0.05)
    login = httpx.post(url + "/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert login.status_code == 200, login.text
    admin_token = login.json()["token"]
    user_org = login.json()["user"]["organization_id"]
    short_id = httpx.get(
        f"{url}/api/v1/organizations/{user_org}", headers={"Authorization": f"Bearer {admin_token}"}
    ).json()["short_id"]
    mqtt_port = int(hub.mqtt_urls["MQTT"].rsplit(":", 1)[1])
    try:
        yield ThreadedHub(hub, box["loop"], url, mqtt_port, admin_token, Org(user_org, short_id, admin_token))
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(60)


@pytest.fixture(scope="module")
def shared_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedHub]:
    """One hub for the tests of a module that do not change its settings or state."""
    with threaded_hub(tmp_path_factory.mktemp("hub")) as hub:
        yield hub


def wait_for(condition: Callable[[], T | None], what: str, timeout: float = 30) -> T:
    """Poll ``condition`` until it returns something truthy (generous timeout, no timing assertions)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
