"""Request bodies above a route's limit are refused with 413 before they are read.

The oversized requests go over raw sockets: the client declares (or starts streaming) far
more than it sends, so a 413 that arrives proves the hub answered without reading the body.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

import pytest
from websockets.asyncio.client import connect

from mqtthub.web.limits import CREDENTIALS_LIMIT
from tests.integration.api.conftest import MAX_PACKET_SIZE
from tests.support.served import LocalHub

DECLARED = 50 * 1024 * 1024
SENT = 4096


async def _raw(base_url: str, head: str, body: bytes) -> tuple[int, dict[str, Any]]:
    """Send ``head`` and ``body`` (only a part of what ``head`` announces), then read the answer."""
    address = urlsplit(base_url)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    try:
        writer.write(head.encode() + b"\r\n" + body)
        await writer.drain()
        response = await asyncio.wait_for(reader.read(), timeout=30)
    finally:
        writer.close()
    status_line, _, rest = response.partition(b"\r\n")
    headers, _, payload = rest.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in headers.lower(), response[:500]
    return int(status_line.split()[1]), json.loads(payload)


def _head(method: str, path: str, headers: dict[str, str]) -> str:
    lines = [f"{method} {path} HTTP/1.1", "Host: hub", "Content-Type: application/json", "Connection: close"]
    return "\r\n".join(lines + [f"{name}: {value}" for name, value in headers.items()]) + "\r\n"


def _auth(running: LocalHub) -> dict[str, str]:
    return {"Authorization": running.client.headers["Authorization"]}


@pytest.mark.parametrize(
    ("path", "limit"),
    [("/publish", MAX_PACKET_SIZE), ("/api/v1/auth/login", CREDENTIALS_LIMIT), ("/api/v1/organizations", 1048576)],
)
async def test_a_declared_length_above_the_limit_is_413_unread(sqlite_hub: LocalHub, path: str, limit: int) -> None:
    head = _head("POST", path, {**_auth(sqlite_hub), "Content-Length": str(DECLARED)})
    status, body = await _raw(sqlite_hub.http_url, head, b"{" + b" " * (SENT - 1))
    assert status == 413
    assert body["code"] == "payload_too_large"
    assert body["success"] is False
    assert str(limit) in body["error"]


@pytest.mark.parametrize(("path", "limit"), [("/publish", MAX_PACKET_SIZE), ("/api/v1/auth/login", CREDENTIALS_LIMIT)])
async def test_a_chunked_body_is_refused_once_it_passes_the_limit(sqlite_hub: LocalHub, path: str, limit: int) -> None:
    head = _head("POST", path, {**_auth(sqlite_hub), "Transfer-Encoding": "chunked"})
    chunk = b" " * (limit + 1)
    # One chunk just past the limit, and no terminating chunk: the body never ends.
    status, body = await _raw(sqlite_hub.http_url, head, b"%x\r\n%s\r\n" % (len(chunk), chunk))
    assert status == 413
    assert body["code"] == "payload_too_large"


async def test_publish_accepts_up_to_the_packet_size_and_other_routes_their_own_limit(sqlite_hub: LocalHub) -> None:
    fits = await sqlite_hub.client.post("/publish", json={"topic": "big/one", "payload": "x" * (MAX_PACKET_SIZE - 100)})
    assert fits.status_code == 200, fits.text
    too_big = await sqlite_hub.client.post("/publish", json={"topic": "big/one", "payload": "x" * MAX_PACKET_SIZE})
    assert too_big.status_code == 413
    login = await sqlite_hub.client.post(
        "/api/v1/auth/login", json={"email": "root@example.com", "password": "x" * CREDENTIALS_LIMIT}
    )
    assert login.status_code == 413
    # An organization of 100 kB (too long a name, but under 1 MiB) is read and validated, not refused unread.
    named = await sqlite_hub.client.post("/api/v1/organizations", json={"name": "n" * 100_000})
    assert named.status_code == 422


async def test_websockets_are_not_limited(sqlite_hub: LocalHub) -> None:
    token = sqlite_hub.client.headers["Authorization"].removeprefix("Bearer ")
    url = "ws" + sqlite_hub.http_url.removeprefix("http") + f"/ws?token={token}"
    async with connect(url, max_size=None) as websocket:
        hello = json.loads(await asyncio.wait_for(websocket.recv(), timeout=30))
        assert hello["type"] == "connected"
        await websocket.send("x" * (2 * 1024 * 1024 - 10))
        await websocket.send("ping")
        for _ in range(5):
            frame = await asyncio.wait_for(websocket.recv(), timeout=30)
            if frame == "pong":
                break
        else:
            pytest.fail("the WebSocket stopped answering after a large frame")
