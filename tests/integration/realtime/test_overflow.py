"""Slow live clients against a real hub: the others still get everything, the slow one is told what it
missed (drop oldest) or is disconnected (disconnect), on ``/api/v1/stream``, ``/ws`` and Socket.IO (spoken
frame by frame, so that a client can stop reading); organizations stay apart across the shared fan-out."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.connection import Connection
from websockets.exceptions import ConnectionClosed, InvalidStatus

from mqtthub.messaging.namespace import OrgScope
from mqtthub.realtime import Event
from tests.integration.messaging.conftest import threaded_hub
from tests.integration.observability.scrape import scrape, value
from tests.support.access import api_token, new_org
from tests.support.served import ThreadedHub

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


async def on_hub(hub: ThreadedHub, action: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``action`` on the hub's event loop (where its fan-out lives) and wait for it."""
    await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(action(), hub.loop))


class Reader:
    """Reads a client's frames in the background; ``numbers`` are the events' ``n`` in arrival order.

    ``/api/v1/stream`` frames name their kind in ``event`` and carry ``data``; ``/ws`` frames name it in
    ``type`` and carry the published JSON as ``payload``.
    """

    def __init__(self, ws: Connection, kind: str = "event") -> None:
        self.ws = ws
        self.kind = kind
        self.frames: list[dict[str, Any]] = []
        self.numbers: list[int] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for frame in self.ws:
            if frame == "pong":
                continue
            data = json.loads(frame)
            self.frames.append(data)
            if data.get(self.kind) == "message":
                self.numbers.append(json.loads(data["payload"])["n"])
            elif isinstance(data.get("data"), dict) and "n" in data["data"]:
                self.numbers.append(data["data"]["n"])

    def caught_up(self, number: int) -> bool:
        """Whether event ``number`` (or a later one) arrived."""
        return bool(self.numbers) and self.numbers[-1] >= number

    def missed(self) -> int:
        """Events the hub said it dropped for this client."""
        return sum(frame["count"] for frame in self.frames if frame.get(self.kind) == "dropped")

    async def was_told_what_it_missed(self) -> None:
        """Every event arrived or was reported dropped, some were dropped, and the newest were kept."""
        await self.until(lambda: len(self.numbers) + self.missed() == EVENTS, "every event received or reported")
        assert self.missed() > 0
        assert self.numbers == sorted(self.numbers)
        assert self.numbers[-1] == EVENTS - 1

    async def was_disconnected_for_being_slow(self) -> None:
        """The connection ends with an error frame saying the client was too slow, and close code 1013."""
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(self.task, 60)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1013
        assert self.frames[-1][self.kind] == "error"
        assert self.frames[-1]["code"] == "too_slow"
        assert len(self.numbers) < EVENTS

    async def until(self, condition: Callable[[], bool], what: str) -> None:
        for _ in range(1200):
            if condition():
                return
            if self.task.done():
                break
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; last frames {self.frames[-3:]!r}")


async def publish_paced(hub: ThreadedHub, fast: Reader, *, mqtt: bool = False) -> None:
    """Publish EVENTS telemetry events (or MQTT messages to ``load/<n>`` of the default organization), never
    more than half a queue ahead of the fast client."""
    org = hub.admin
    scope = OrgScope.of(org.org_id, org.short_id)
    chunk = QUEUE // 2
    for start in range(0, EVENTS, chunk):
        numbers = range(start, min(start + chunk, EVENTS))

        async def publish(numbers: range = numbers) -> None:
            for n in numbers:
                data = {"n": n, "pad": BLOB}
                if mqtt:
                    payload = json.dumps(data).encode()
                    await hub.hub.messaging.publish(scope, f"load/{n}", payload, qos=0, retain=False)
                else:
                    hub.hub.realtime.publish(Event(org.org_id, "datastream", "devices/d1/datastream", data))

        await on_hub(hub, publish)
        last = numbers[-1]
        await fast.until(lambda: fast.caught_up(last), "the fast client")  # noqa: B023 (awaited at once)


def live_metric(hub: ThreadedHub, name: str, endpoint: str) -> float:
    """A live-client series of the hub's ``/metrics``."""
    return value(scrape(hub.http_url + "/metrics"), name, endpoint=endpoint)


def stream_url(hub: ThreadedHub, query: str = "") -> str:
    return hub.http_url.replace("http://", "ws://") + f"/api/v1/stream?token={hub.admin.token}&topics=%23{query}"


async def ready(ws: Connection) -> None:
    assert json.loads(await asyncio.wait_for(ws.recv(), 30))["event"] == "ready"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with threaded_hub(tmp_path_factory.mktemp("hub"), realtime_queue_size=QUEUE) as running:
        yield running


def test_stream_drop_oldest_tells_the_slow_client_what_it_missed(hub: ThreadedHub) -> None:
    async def scenario() -> None:
        other_org = hub.call(new_org(hub.admin, "elsewhere"))
        async with (
            connect(stream_url(hub), max_size=None, compression=None) as fast_ws,
            await slow_connection(stream_url(hub)) as slow_ws,
            connect(
                hub.http_url.replace("http://", "ws://") + f"/api/v1/stream?token={other_org.token}&topics=%23"
            ) as stranger_ws,
        ):
            for ws in (fast_ws, slow_ws, stranger_ws):
                await ready(ws)
            fast = Reader(fast_ws)
            stranger = Reader(stranger_ws)
            await publish_paced(hub, fast)
            assert fast.numbers == list(range(EVENTS))
            assert fast.missed() == 0

            slow = Reader(slow_ws)
            await slow.was_told_what_it_missed()
            assert live_metric(hub, "mqtthub_live_dropped_total", "stream") >= slow.missed()
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
            await publish_paced(hub, fast)
            assert fast.numbers == list(range(EVENTS))
            assert hub.hub.realtime.disconnected == before + 1
            assert live_metric(hub, "mqtthub_live_disconnected_total", "stream") == before + 1

            slow = Reader(slow_ws)
            await slow.was_disconnected_for_being_slow()
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


async def ws_following(url: str, ws: Connection) -> Connection:
    """``ws`` once connected to ``/ws`` and following ``load/#`` (live, not recorded)."""
    assert json.loads(await asyncio.wait_for(ws.recv(), 30))["type"] == "connected"
    await ws.send(json.dumps({"action": "subscribe", "topic": "load/#"}))
    assert json.loads(await asyncio.wait_for(ws.recv(), 30))["type"] == "subscribed"
    return ws


def test_ws_drop_oldest_tells_the_slow_client_what_it_missed(hub: ThreadedHub) -> None:
    async def scenario() -> None:
        url = f"{hub.ws_url}?token={hub.call(api_token(hub.admin))}"
        stranger_url = f"{hub.ws_url}?token={hub.call(api_token(hub.call(new_org(hub.admin, 'ws elsewhere'))))}"
        async with (
            connect(url, max_size=None, compression=None) as fast_ws,
            await slow_connection(url) as slow_ws,
            connect(stranger_url) as stranger_ws,
        ):
            for ws in (fast_ws, slow_ws):
                await ws_following(url, ws)
            await ws_following(stranger_url, stranger_ws)
            fast = Reader(fast_ws, "type")
            stranger = Reader(stranger_ws, "type")
            await publish_paced(hub, fast, mqtt=True)
            assert fast.numbers == list(range(EVENTS))
            assert fast.missed() == 0

            slow = Reader(slow_ws, "type")
            await slow.was_told_what_it_missed()
            assert live_metric(hub, "mqtthub_live_dropped_total", "ws") >= slow.missed()
            assert [frame for frame in stranger.frames if frame["type"] != "heartbeat"] == []

    asyncio.run(scenario())


def test_ws_disconnect_policy_drops_only_the_slow_client(hub: ThreadedHub) -> None:
    async def scenario() -> None:
        before = hub.hub.messaging.live.disconnected
        url = f"{hub.ws_url}?token={hub.call(api_token(hub.admin))}"
        async with (
            connect(url, max_size=None, compression=None) as fast_ws,
            await slow_connection(url + "&overflow=disconnect") as slow_ws,
        ):
            for ws in (fast_ws, slow_ws):
                await ws_following(url, ws)
            fast = Reader(fast_ws, "type")
            await publish_paced(hub, fast, mqtt=True)
            assert fast.numbers == list(range(EVENTS))
            assert hub.hub.messaging.live.disconnected == before + 1
            assert live_metric(hub, "mqtthub_live_disconnected_total", "ws") == before + 1

            slow = Reader(slow_ws, "type")
            await slow.was_disconnected_for_being_slow()
            assert not fast_ws.close_code

    asyncio.run(scenario())


def test_ws_refuses_an_unknown_overflow_policy_before_the_handshake(hub: ThreadedHub) -> None:
    async def scenario() -> None:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{hub.ws_url}?token={hub.call(api_token(hub.admin))}&overflow=block"):
                pass
        assert refused.value.response.status_code == 422

    asyncio.run(scenario())


class SocketIOReader(Reader):
    """Reads Engine.IO/Socket.IO frames: answers pings, records events as ``{"event": name, ...body}`` and the
    server's disconnect as ``{"event": "disconnect"}``."""

    async def _read(self) -> None:
        async for frame in self.ws:
            assert isinstance(frame, str)
            if frame == "2":
                await self.ws.send("3")
            elif frame.startswith("42"):
                name, body = json.loads(frame[2:])
                self.frames.append({**body, "event": name})
                if isinstance(body.get("data"), dict) and "n" in body["data"]:
                    self.numbers.append(body["data"]["n"])
            elif frame.startswith("41"):
                self.frames.append({"event": "disconnect"})


def socketio_url(hub: ThreadedHub) -> str:
    return hub.http_url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"


async def socketio_join(ws: Connection, auth: dict[str, str]) -> str:
    """Open the Socket.IO namespace with ``auth``; the server's answer (``40…`` accepted, ``44…`` refused)."""
    opened = await asyncio.wait_for(ws.recv(), 30)
    assert isinstance(opened, str)
    assert opened.startswith("0")
    await ws.send("40" + json.dumps(auth))
    answer = await asyncio.wait_for(ws.recv(), 30)
    assert isinstance(answer, str)
    return answer


def test_socketio_drop_oldest_tells_the_slow_client_what_it_missed(hub: ThreadedHub) -> None:
    async def scenario() -> None:
        other_org = hub.call(new_org(hub.admin, "socket.io elsewhere"))
        async with (
            connect(socketio_url(hub), max_size=None, compression=None) as fast_ws,
            await slow_connection(socketio_url(hub)) as slow_ws,
            connect(socketio_url(hub)) as stranger_ws,
        ):
            for ws in (fast_ws, slow_ws):
                assert (await socketio_join(ws, {"token": hub.admin.token})).startswith("40")
            assert (await socketio_join(stranger_ws, {"token": other_org.token})).startswith("40")
            fast = SocketIOReader(fast_ws)
            stranger = SocketIOReader(stranger_ws)
            await publish_paced(hub, fast)
            assert fast.numbers == list(range(EVENTS))
            assert fast.missed() == 0

            slow = SocketIOReader(slow_ws)
            await slow.was_told_what_it_missed()
            assert stranger.frames == []

    asyncio.run(scenario())


def test_socketio_disconnect_policy_drops_only_the_slow_client(hub: ThreadedHub) -> None:
    async def scenario() -> None:
        before = hub.hub.realtime.disconnected
        async with (
            connect(socketio_url(hub), max_size=None, compression=None) as fast_ws,
            await slow_connection(socketio_url(hub)) as slow_ws,
        ):
            assert (await socketio_join(fast_ws, {"token": hub.admin.token})).startswith("40")
            slow_auth = {"token": hub.admin.token, "overflow": "disconnect"}
            assert (await socketio_join(slow_ws, slow_auth)).startswith("40")
            fast = SocketIOReader(fast_ws)
            await publish_paced(hub, fast)
            assert fast.numbers == list(range(EVENTS))
            assert hub.hub.realtime.disconnected == before + 1

            slow = SocketIOReader(slow_ws)
            await slow.until(lambda: bool(slow.frames) and slow.frames[-1]["event"] == "disconnect", "the disconnect")
            assert slow.frames[-2]["event"] == "error"
            assert slow.frames[-2]["code"] == "too_slow"
            assert len(slow.numbers) < EVENTS
            assert fast.frames[-1]["event"] == "datastream"  # the fast client stays connected

    asyncio.run(scenario())


def test_socketio_refuses_an_unknown_overflow_policy(hub: ThreadedHub) -> None:
    async def scenario() -> None:
        async with connect(socketio_url(hub)) as ws:
            answer = await socketio_join(ws, {"token": hub.admin.token, "overflow": "block"})
            assert answer.startswith("44")
            assert "drop_oldest, disconnect" in answer

    asyncio.run(scenario())
