"""Slow live clients against a real hub: the others still get everything, the slow one is told what it
missed (drop oldest) or is disconnected (disconnect), on ``/api/v1/stream``; organizations stay apart."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.connection import Connection
from websockets.exceptions import ConnectionClosed

from mqtthub.realtime import Event
from tests.integration.messaging.conftest import ThreadedHub, threaded_hub

QUEUE = 8
"""Live events queued per client (MQTTHUB_REALTIME_QUEUE_SIZE) in these tests."""
BLOB = "x" * 16_384
"""Padding that makes each event large, so a client that stops reading fills its socket buffers quickly."""
EVENTS = 600
"""Events published per scenario: far more than the socket buffers of a stalled client and its queue hold."""


async def slow_connection(url: str) -> ClientConnection:
    """A WebSocket client with a tiny receive buffer that buffers at most one frame, without compression (the
    padding would shrink to nothing): once the test stops reading, the hub's sends to it soon block."""
    host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    return await connect(url, sock=sock, max_queue=1, max_size=None, compression=None)


async def on_hub(hub: ThreadedHub, action: Callable[[], None]) -> None:
    """Run ``action`` on the hub's event loop (where its fan-out lives) and wait for it."""

    async def run() -> None:
        action()

    await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(run(), hub.loop))


class Reader:
    """Reads a client's frames in the background; ``numbers`` are the events' ``n`` in arrival order."""

    def __init__(self, ws: Connection) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []
        self.numbers: list[int] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for frame in self.ws:
            data = json.loads(frame)
            self.frames.append(data)
            if "data" in data and isinstance(data["data"], dict) and "n" in data["data"]:
                self.numbers.append(data["data"]["n"])

    def caught_up(self, number: int) -> bool:
        """Whether event ``number`` (or a later one) arrived."""
        return bool(self.numbers) and self.numbers[-1] >= number

    def missed(self) -> int:
        """Events the hub said it dropped for this client."""
        return sum(frame["count"] for frame in self.frames if frame["event"] == "dropped")

    async def until(self, condition: Callable[[], bool], what: str) -> None:
        for _ in range(1200):
            if condition():
                return
            if self.task.done():
                break
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; last frames {self.frames[-3:]!r}")


async def publish_paced(hub: ThreadedHub, organization_id: str, fast: Reader) -> None:
    """Publish EVENTS events, never more than half a queue ahead of the fast client."""
    chunk = QUEUE // 2
    for start in range(0, EVENTS, chunk):
        numbers = range(start, min(start + chunk, EVENTS))

        def publish(numbers: range = numbers) -> None:
            for n in numbers:
                data = {"n": n, "pad": BLOB}
                hub.hub.realtime.publish(Event(organization_id, "datastream", "devices/d1/datastream", data))

        await on_hub(hub, publish)
        last = numbers[-1]
        await fast.until(lambda: fast.caught_up(last), "the fast client")  # noqa: B023 (awaited at once)


def stream_url(hub: ThreadedHub, query: str = "") -> str:
    return hub.url.replace("http://", "ws://") + f"/api/v1/stream?token={hub.admin_token}&topics=%23{query}"


async def ready(ws: Connection) -> None:
    assert json.loads(await asyncio.wait_for(ws.recv(), 30))["event"] == "ready"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with threaded_hub(tmp_path_factory.mktemp("hub"), realtime_queue_size=QUEUE) as running:
        yield running


def test_stream_drop_oldest_tells_the_slow_client_what_it_missed(hub: ThreadedHub) -> None:
    async def scenario() -> None:
        other_org = hub.new_org("elsewhere")
        async with (
            connect(stream_url(hub), max_size=None, compression=None) as fast_ws,
            await slow_connection(stream_url(hub)) as slow_ws,
            connect(
                hub.url.replace("http://", "ws://") + f"/api/v1/stream?token={other_org.admin_token}&topics=%23"
            ) as stranger_ws,
        ):
            for ws in (fast_ws, slow_ws, stranger_ws):
                await ready(ws)
            fast = Reader(fast_ws)
            stranger = Reader(stranger_ws)
            await publish_paced(hub, hub.default_org.id, fast)
            assert fast.numbers == list(range(EVENTS))
            assert fast.missed() == 0

            slow = Reader(slow_ws)
            await slow.until(lambda: len(slow.numbers) + slow.missed() == EVENTS, "every event received or reported")
            assert slow.missed() > 0
            assert slow.numbers == sorted(slow.numbers)
            assert slow.numbers[-1] == EVENTS - 1  # the newest are kept
            assert stranger.frames == []  # another organization's client saw nothing of it

    asyncio.run(scenario())


def test_stream_disconnect_policy_drops_only_the_slow_client(hub: ThreadedHub) -> None:
    async def scenario() -> None:
        before = hub.hub.realtime.disconnected
        async with (
            connect(stream_url(hub), max_size=None, compression=None) as fast_ws,
            await slow_connection(stream_url(hub, "&overflow=disconnect")) as slow_ws,
        ):
            for ws in (fast_ws, slow_ws):
                await ready(ws)
            fast = Reader(fast_ws)
            await publish_paced(hub, hub.default_org.id, fast)
            assert fast.numbers == list(range(EVENTS))
            assert hub.hub.realtime.disconnected == before + 1

            slow = Reader(slow_ws)
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(slow.task, 60)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1013
            assert slow.frames[-1]["event"] == "error"
            assert slow.frames[-1]["code"] == "too_slow"
            assert len(slow.numbers) < EVENTS
            assert not fast_ws.close_code  # the fast client stays connected

    asyncio.run(scenario())


def test_an_unknown_overflow_policy_is_refused(hub: ThreadedHub) -> None:
    async def scenario() -> None:
        async with connect(stream_url(hub, "&overflow=block")) as ws:
            error = json.loads(await asyncio.wait_for(ws.recv(), 30))
            assert (error["event"], error["code"]) == ("error", "validation_error")
            assert "drop_oldest, disconnect" in error["error"]
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 30)

    asyncio.run(scenario())
