"""The auth backend's own HTTP/1.1 server (:mod:`mqtthub.authbackend.server`) on the wire: keep-alive, pipelining,
methods, ``Expect: 100-continue``, and the limits that close a connection, with raw sockets as a broker's HTTP
client would write them."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from mqtthub.authbackend.guard import BackendGuard
from mqtthub.authbackend.server import MAX_HEAD, AuthBackendServer
from mqtthub.errors import StateError
from tests.integration.authbackend.world import SECRET, World, auth_backend_world

BASIC = base64.b64encode(f"broker:{SECRET}".encode()).decode()

Response = tuple[int, dict[str, str], bytes]


def request(path: str, body: bytes = b"", *, method: str = "POST", version: str = "1.1", extra: str = "") -> bytes:
    head = (
        f"{method} {path} HTTP/{version}\r\nHost: hub\r\nAuthorization: Basic {BASIC}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode() + body


async def read_response(reader: asyncio.StreamReader) -> Response:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines if line)}
    body = await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", "0"))), 10)
    return int(status_line.split(" ")[1]), headers, body


async def closed(reader: asyncio.StreamReader) -> bool:
    return await asyncio.wait_for(reader.read(), 10) == b""


@asynccontextmanager
async def served(
    tmp_path: Path, *, max_head: int = MAX_HEAD, max_body: int = 8192, idle_timeout: float = 60.0
) -> AsyncIterator[tuple[World, tuple[str, int]]]:
    """A world whose auth backend is also served by a server of the test's own, with these limits."""
    async with auth_backend_world(f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}", tmp_path) as world:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        sock.setblocking(False)
        guard = BackendGuard.from_settings(world.running.hub.settings)
        assert guard is not None
        backend = world.running.hub.auth_backend
        async with AuthBackendServer(
            backend, guard, sock, max_head=max_head, max_body=max_body, idle_timeout=idle_timeout
        ) as server:
            with pytest.raises(StateError):
                await server.__aenter__()
            yield world, sock.getsockname()[:2]


def login(world: World) -> bytes:
    device = world.identity("device")
    return json.dumps({"username": device.username, "password": device.password, "clientid": "c1"}).encode()


async def test_pipelined_requests_are_answered_in_order_and_the_connection_kept(tmp_path: Path) -> None:
    async with served(tmp_path) as (world, address):
        reader, writer = await asyncio.open_connection(*address)
        writer.write(
            request("/auth-backend/emqx/authn", login(world))
            + request("/auth-backend/nowhere")
            + request("/auth-backend/mosquitto/superuser", b'{"username": "x"}')
            + request("/auth-backend/emqx/authn", method="DELETE")
        )
        answers = [await read_response(reader) for _ in range(4)]
        writer.write(request("/auth-backend/emqx/authn", login(world), extra="Expect: 100-continue\r\n"))
        continued = await read_response(reader)
        after = await read_response(reader)
        writer.close()
    (allowed, _, body), (missing, _, missing_body), (superuser, _, _), (deleted, deleted_headers, _) = answers
    assert (allowed, json.loads(body)["result"]) == (200, "allow")
    assert (missing, json.loads(missing_body)["code"]) == (404, "not_found")
    assert superuser == 403
    assert (deleted, deleted_headers["allow"]) == (405, "GET, POST, PUT")
    assert continued[0] == 100
    assert after[0] == 200


async def test_http_1_0_gets_one_answer_and_a_closed_connection(tmp_path: Path) -> None:
    async with served(tmp_path) as (world, address):
        reader, writer = await asyncio.open_connection(*address)
        writer.write(request("/auth-backend/emqx/authn", login(world), version="1.0"))
        status, headers, _ = await read_response(reader)
        assert await closed(reader)
        writer.close()
    assert (status, headers["connection"]) == (200, "close")


@pytest.mark.parametrize(
    ("sent", "status"),
    [
        (request("/auth-backend/emqx/authn", b"{}", extra="X-Padding: " + "p" * 600 + "\r\n"), 431),
        (request("/auth-backend/emqx/authn", b"x" * 600), 413),
        (b"NOT HTTP AT ALL\r\n\r\n", 400),
    ],
    ids=["head", "body", "garbage"],
)
async def test_a_request_past_a_limit_is_answered_then_the_connection_closed(
    tmp_path: Path, sent: bytes, status: int
) -> None:
    async with served(tmp_path, max_head=512, max_body=512) as (world, address):
        reader, writer = await asyncio.open_connection(*address)
        writer.write(request("/auth-backend/emqx/authn", login(world)) + sent)
        first = await read_response(reader)
        refused, headers, body = await read_response(reader)
        assert await closed(reader)
        writer.close()
        counted = world.running.hub.auth_backend.checks
    assert first[0] == 200  # the request before the bad one is still answered, first
    assert (refused, headers["connection"], json.loads(body)["success"]) == (status, "close", False)
    assert sum(counted.values()) == 1


async def test_an_idle_connection_is_closed(tmp_path: Path) -> None:
    async with served(tmp_path, idle_timeout=0.3) as (world, address):
        reader, writer = await asyncio.open_connection(*address)
        writer.write(request("/auth-backend/emqx/authn", login(world)))
        assert (await read_response(reader))[0] == 200
        assert await closed(reader)
        writer.close()
