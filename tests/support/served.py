"""A test hub served on ephemeral ports: in the test's event loop, in a thread of the test process, or as a process.

Every flavour is built from the same :func:`hub_settings` (or, for a process, the same keyword overrides turned
into ``MQTTHUB_*`` variables), waits for readiness the same way (:func:`wait_until_serving`), logs the platform
administrator in with the same call, and answers with a :class:`Served`: the HTTP base URL, the MQTT listeners,
the administrator's :class:`~tests.support.access.Account` and MQTT connection parameters.

- :func:`serve_in_process`: ``async with Hub(settings)`` and ``run`` as a task of the test's loop; asyncio clients
  only (a blocking request would stop the loop that serves it).
- :func:`serve_in_thread`: the same hub on an event loop of its own thread, for blocking clients (paho, the sync
  SDK, the CLI) beside asyncio ones; fit for a module-scoped fixture shared by tests that do not disturb each other.
- :func:`~tests.support.hubproc.serve_process`: ``mqtthub serve`` as a child process, for restarts, ``kill -9``,
  signals and what it prints.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from mqtthub.config import Settings
from mqtthub.hub import Hub
from tests.support.access import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    Account,
    Call,
    MqttParams,
    arun_call,
    login,
    run_call,
)

T = TypeVar("T")
READY_TIMEOUT = 60.0
TEST_DEFAULTS: dict[str, Any] = {
    "host": "127.0.0.1",
    "http_port": 0,
    "mqtt_port": 0,
    "mqtts_port": 0,
    "ws_port": 0,
    "wss_port": 0,
    "admin_email": ADMIN_EMAIL,
    "admin_password": ADMIN_PASSWORD,
}
"""What every test hub has unless a test overrides it: ephemeral ports on loopback and a known administrator."""


def sqlite_url(directory: Path) -> str:
    """The URL of a SQLite database file ``hub.db`` in ``directory``."""
    return f"sqlite+aiosqlite:///{directory / 'hub.db'}"


def hub_settings(data_dir: Path, *, database_url: str | None = None, **overrides: Any) -> Settings:
    """Settings of a test hub keeping its files in ``data_dir`` (SQLite there unless ``database_url`` is given)."""
    values = TEST_DEFAULTS | {"data_dir": data_dir, "database_url": database_url or sqlite_url(data_dir)}
    return Settings(_env_file=None, **(values | overrides))


def wait_until_serving(http_url: str, timeout: float = READY_TIMEOUT) -> None:
    """Block until ``/health`` answers (200 or 503: the API serves, whatever a component reports)."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=http_url, timeout=10) as client:
        while True:
            try:
                if client.get("/health").status_code in (200, 503):
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the hub's HTTP API at {http_url} did not come up within {timeout:.0f}s")
            time.sleep(0.025)


@dataclass
class Served:
    """Where a served hub answers, and its administrator."""

    http_url: str
    mqtt_urls: dict[str, str]
    """MQTT listeners by label (``MQTT``, ``MQTT TLS``, ``MQTT WebSocket``, ``MQTT WSS``) and their URLs."""
    logged_in: Account | None
    """The administrator's session; None only for a process started without a known administrator password."""

    @property
    def admin(self) -> Account:
        """The platform administrator's session."""
        assert self.logged_in is not None, "this hub was started without a known administrator password"
        return self.logged_in

    @property
    def ws_url(self) -> str:
        """The messaging API's WebSocket (``/ws``)."""
        return "ws" + self.http_url.removeprefix("http") + "/ws"

    def port(self, label: str = "MQTT") -> int:
        """The port of an MQTT listener (or of ``HTTP API``)."""
        url = self.http_url if label == "HTTP API" else self.mqtt_urls[label]
        return int(url.rsplit(":", 1)[1].split("/")[0])

    @property
    def mqtt_port(self) -> int:
        """The port of the plain MQTT listener."""
        return self.port("MQTT")

    def mqtt(self, username: str | None = None, password: str | None = None, label: str = "MQTT") -> MqttParams:
        """Connection parameters of an MQTT listener; ``password`` defaults to ``username`` (API tokens)."""
        return MqttParams("127.0.0.1", self.port(label), username, password if password is not None else username)

    def http(self, token: str | None = None, api_key: str | None = None) -> httpx.Client:
        """A blocking HTTP client with a session or API token (``Authorization``) or an ``X-API-Key``, or none."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if api_key:
            headers["X-API-Key"] = api_key
        return httpx.Client(base_url=self.http_url, headers=headers, timeout=30)

    def async_http(self, token: str | None = None, api_key: str | None = None) -> httpx.AsyncClient:
        """An asyncio HTTP client with a session or API token, an ``X-API-Key``, or none."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if api_key:
            headers["X-API-Key"] = api_key
        return httpx.AsyncClient(base_url=self.http_url, headers=headers, timeout=30)

    async def acall(self, call: Call[T]) -> T:
        """Run a setup step of :mod:`tests.support.access` from an asyncio test."""
        async with httpx.AsyncClient(base_url=self.http_url, timeout=30) as client:
            return await arun_call(client, call)

    def call(self, call: Call[T]) -> T:
        """Run a setup step from a blocking test (a hub in a thread or a process, never in the test's own loop)."""
        with httpx.Client(base_url=self.http_url, timeout=30) as client:
            return run_call(client, call)


@dataclass
class LocalHub(Served):
    """A hub in the test's event loop, with an asyncio client logged in as its administrator."""

    hub: Hub
    client: httpx.AsyncClient
    """The administrator's HTTP client, open while the hub runs."""

    async def login(self, email: str, password: str) -> httpx.AsyncClient:
        """A new HTTP client carrying a session of ``email`` (the caller closes it)."""
        return (await self.acall(login(self.http_url, email, password))).async_http()


@dataclass
class ThreadedHub(Served):
    """A hub on an event loop of its own thread: blocking clients may talk to it from the test."""

    hub: Hub
    loop: asyncio.AbstractEventLoop

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the hub's event loop (to reach its components) and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(60)


def _listeners(hub: Hub) -> tuple[str, dict[str, str]]:
    host, port = hub.http_address
    return f"http://{host}:{port}", hub.mqtt_urls


@asynccontextmanager
async def serve_in_process(settings: Settings) -> AsyncIterator[LocalHub]:
    """Run a hub in this event loop until the caller is done with it; then stop it and wait for the end."""
    stop = asyncio.Event()
    async with Hub(settings) as hub:
        task = asyncio.create_task(hub.run(stop), name="test-hub")
        try:
            http_url, mqtt_urls = _listeners(hub)
            await asyncio.to_thread(wait_until_serving, http_url)
            async with httpx.AsyncClient(base_url=http_url, timeout=30) as anonymous:
                admin = await arun_call(anonymous, login(http_url, settings.admin_email, _admin_password(settings)))
            async with admin.async_http() as client:
                yield LocalHub(http_url, mqtt_urls, admin, hub, client)
        finally:
            stop.set()
            await task


def _admin_password(settings: Settings) -> str:
    password = settings.admin_password
    assert password is not None, "a test hub needs a known administrator password"
    return password


@contextmanager
def serve_in_thread(settings: Settings) -> Iterator[ThreadedHub]:
    """Run a hub on an event loop in a thread until the caller is done with it; then stop it and join the thread."""
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
    try:
        assert started.wait(READY_TIMEOUT), "the hub did not start"
        if "error" in box:
            raise box["error"]
        hub: Hub = box["hub"]
        http_url, mqtt_urls = _listeners(hub)
        wait_until_serving(http_url)
        with httpx.Client(base_url=http_url, timeout=30) as anonymous:
            admin = run_call(anonymous, login(http_url, settings.admin_email, _admin_password(settings)))
        yield ThreadedHub(http_url, mqtt_urls, admin, hub, box["loop"])
    finally:
        if "loop" in box and not box["loop"].is_closed():
            box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(READY_TIMEOUT)
        assert not thread.is_alive(), "the hub's thread did not end"
