"""``StreamClient``: the hub's live message stream (``WS /ws``), with reconnects.

Messages reach a handler (``await stream.listen()``) or an ``async for`` loop. When the
connection drops, the client reconnects with exponential backoff (``initial_backoff``
doubling up to ``max_backoff``) and subscribes its filters again; refused credentials
(401/403) are not retried. :meth:`StreamClient.disconnect` closes cleanly and ends both
``listen()`` and iteration.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any, Self

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from mqtthub.client._calls import auth_headers, base_url_of
from mqtthub.client._exceptions import (
    AuthenticationError,
    ClientStateError,
    HubConnectionError,
    PermissionDeniedError,
    error_for,
)
from mqtthub.client._models import Message

logger = logging.getLogger(__name__)

MessageHandler = Callable[[Message], Awaitable[None] | None]


def stream_url(base_url: str) -> str:
    """The ``ws://``/``wss://`` URL of ``/ws`` for an ``http(s)://`` or ``ws(s)://`` base URL."""
    if base_url.startswith("http"):
        base_url = "ws" + base_url[len("http") :]
    return base_url if base_url.endswith("/ws") else base_url + "/ws"


class StreamClient:
    """A WebSocket client of ``/ws``.

    Args:
        base_url: The hub's address (``http://…`` or ``ws://…``); defaults to ``MQTTHUB_URL`` or
            ``http://localhost:8000``.
        api_key: An MQTT API token, sent as ``X-API-Key``.
        token: A session token or MQTT API token, sent as a bearer token.
        message_handler: Called (and awaited, if a coroutine function) with each :class:`Message` by
            :meth:`listen`.
        topics: Filters to receive instead of the organization's recorded messages.
        reconnect: Reconnect after a dropped connection.
        initial_backoff: First wait before reconnecting, in seconds; doubles per failed attempt.
        max_backoff: Longest wait between attempts.
        max_queued: Messages buffered for a slow consumer; beyond it the oldest are dropped.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        token: str | None = None,
        message_handler: MessageHandler | None = None,
        topics: Iterable[str] = (),
        reconnect: bool = True,
        initial_backoff: float = 0.5,
        max_backoff: float = 30.0,
        open_timeout: float = 10.0,
        max_queued: int = 1000,
    ) -> None:
        self.url = stream_url(base_url_of(base_url))
        self._headers = auth_headers(api_key, token)
        self.message_handler = message_handler
        self.topics: list[str] = list(dict.fromkeys(topics))
        self.reconnect = reconnect
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.open_timeout = open_timeout
        self.reconnects = 0
        self.dropped = 0
        self._max_queued = max_queued
        self._connection: ClientConnection | None = None
        self._queue: asyncio.Queue[Message | None] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = False
        self._failure: BaseException | None = None

    @property
    def connected(self) -> bool:
        """Whether a WebSocket connection is open now."""
        return self._connection is not None and self._reader is not None and not self._reader.done()

    # --- life cycle ----------------------------------------------------------------------------------

    async def connect(self) -> None:
        """Open the connection (and subscribe ``topics``); errors of the first attempt are raised.

        Raises:
            AuthenticationError, PermissionDeniedError, RateLimitedError, ServiceUnavailableError: the hub refused.
            HubConnectionError: the hub could not be reached.
            ClientStateError: already connected, or disconnected for good.
        """
        if self._closed:
            raise ClientStateError("this stream client was disconnected; create a new one")
        if self._reader is not None:
            raise ClientStateError("this stream client is already connected")
        self._connection = await self._open()
        self._reader = asyncio.create_task(self._read_loop(), name="mqtthub-stream-reader")

    async def disconnect(self) -> None:
        """Close the connection; :meth:`listen` returns and iteration ends."""
        self._closing = True
        self._closed = True
        if self._connection is not None:
            with contextlib.suppress(WebSocketException, OSError):
                await self._connection.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._queue.put_nowait(None)

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.disconnect()

    # --- filters -------------------------------------------------------------------------------------

    async def subscribe(self, topic: str) -> None:
        """Receive ``topic``'s messages (kept across reconnects)."""
        if topic not in self.topics:
            self.topics.append(topic)
        await self._send({"action": "subscribe", "topic": topic})

    async def unsubscribe(self, topic: str) -> None:
        """Stop receiving ``topic``'s messages."""
        if topic in self.topics:
            self.topics.remove(topic)
        await self._send({"action": "unsubscribe", "topic": topic})

    async def ping(self) -> None:
        """Send the text ``ping`` (the hub answers ``pong``)."""
        if self._connection is None:
            raise ClientStateError("not connected")
        await self._connection.send("ping")

    async def _send(self, body: dict[str, Any]) -> None:
        if self._connection is None:
            return
        with contextlib.suppress(ConnectionClosed):
            await self._connection.send(json.dumps(body))

    # --- reading -------------------------------------------------------------------------------------

    async def listen(self) -> None:
        """Call ``message_handler`` for each message until :meth:`disconnect` (connecting first if needed).

        Raises:
            HubError: the stream ended for good (credentials refused on reconnect, reconnect disabled).
        """
        if self.message_handler is None:
            raise ClientStateError("listen() needs a message_handler; or iterate with 'async for'")
        if self._reader is None:
            await self.connect()
        async for message in self:
            result = self.message_handler(message)
            if inspect.isawaitable(result):
                await result

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[Message]:
        if self._reader is None and not self._closed:
            await self.connect()
        while True:
            message = await self._queue.get()
            if message is None:
                if self._failure is not None and not self._closing:
                    raise self._failure
                return
            yield message

    async def _open(self) -> ClientConnection:
        url = self.url
        try:
            connection = await connect(url, additional_headers=self._headers, open_timeout=self.open_timeout)
        except InvalidStatus as exc:
            response = exc.response
            try:
                body: Any = json.loads(response.body or b"")
            except ValueError:
                body = (response.body or b"").decode(errors="replace")
            raise error_for(response.status_code, body, response.headers.get("Retry-After")) from None
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise HubConnectionError(f"cannot open {url}: {exc!r}") from exc
        for topic in self.topics:
            await connection.send(json.dumps({"action": "subscribe", "topic": topic}))
        return connection

    def _offer(self, message: Message) -> None:
        if self._queue.qsize() >= self._max_queued:
            with contextlib.suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()
                self.dropped += 1
        self._queue.put_nowait(message)

    async def _read_loop(self) -> None:
        backoff = self.initial_backoff
        try:
            while True:
                assert self._connection is not None
                try:
                    async for frame in self._connection:
                        backoff = self.initial_backoff
                        self._dispatch(frame)
                except ConnectionClosed:
                    pass
                if self._closing:
                    return
                if not self.reconnect:
                    raise HubConnectionError(f"the stream {self.url} was closed by the hub")
                while True:
                    logger.info("stream to %s dropped; reconnecting in %.1fs", self.url, backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(self.max_backoff, backoff * 2)
                    try:
                        self._connection = await self._open()
                    except (AuthenticationError, PermissionDeniedError):
                        raise
                    except Exception as exc:  # any other refusal or network failure is retried
                        logger.info("reconnecting to %s failed: %s", self.url, exc)
                        continue
                    self.reconnects += 1
                    break
        except Exception as exc:
            self._failure = exc
        finally:
            if not self._closing:
                self._queue.put_nowait(None)

    def _dispatch(self, frame: str | bytes) -> None:
        if isinstance(frame, bytes):
            frame = frame.decode(errors="replace")
        if frame == "pong":
            return
        try:
            data = json.loads(frame)
        except ValueError:
            logger.debug("ignoring a non-JSON frame: %.80s", frame)
            return
        if not isinstance(data, dict):
            return
        kind = data.get("type")
        if kind == "message":
            self._offer(Message.model_validate(data))
        elif kind == "error":
            logger.warning("the hub refused a stream request: %s", data.get("error"))
