"""The auth backend's own port: a small HTTP/1.1 server for the brokers' checks and nothing else.

A broker asks once per connection and topic, thousands of times a second at a fleet's reconnect, and waits for
each answer before it lets the client go on. Through the API's stack (uvicorn, ASGI, Starlette) the HTTP handling
cost several times what a cached check does, so the port of its own (``auth_backend_port``) is served by this
protocol: httptools (the C parser uvicorn uses too) splits the requests, and each goes straight to its
:class:`~mqtthub.authbackend.dispatch.Endpoint`, which answers from the credential and topic caches without a
database round trip when they hold the answer.

What it speaks is what the brokers send (RabbitMQ's ``rabbitmq_auth_backend_http``, EMQX's HTTP authenticator and
authorizer, mosquitto-go-auth): GET, POST or PUT with a query string, a form or a JSON body, on keep-alive
connections. Limits, each answered and then the connection closed: a head over ``max_head`` bytes is 431, a body
over ``max_body`` bytes 413, anything the parser refuses 400; an unknown path is 404 and another method 405 (the
connection stays). Pipelined requests are answered in order; past ``max_pipelined`` waiting ones, or while the
client does not read its answers, the server stops reading the connection (it is slowed down, never buffered
without bound). A connection idle for ``idle_timeout`` seconds is closed.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import socket
import time
from collections import deque
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import Self, cast

import httptools

from mqtthub.authbackend.common import Answer, AuthBackend, json_answer
from mqtthub.authbackend.dispatch import METHODS, MOUNT_PATH, BackendRequest, Endpoint, endpoints
from mqtthub.authbackend.guard import BackendGuard
from mqtthub.errors import StateError
from mqtthub.web.errors import error_body
from mqtthub.web.limits import CREDENTIALS_LIMIT

logger = logging.getLogger(__name__)

MAX_HEAD = 16 * 1024
"""Bytes of request line and headers: a broker sends a few short headers."""

_PHRASES = {status.value: status.phrase for status in HTTPStatus}
_ALLOW = (("Allow", ", ".join(METHODS)),)
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class ServerState(enum.Enum):
    """Where the server is in its life cycle."""

    CREATED = "created"
    RUNNING = "running"
    CLOSED = "closed"


class _Refused(Exception):
    """A request past a limit: answered with ``answer``, then the connection closes."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.status)
        self.answer = answer


@dataclass(slots=True)
class _Pending:
    """A parsed request waiting for its turn, or an answer already decided."""

    keep_alive: bool
    endpoint: Endpoint | None = None
    request: BackendRequest | None = None
    started: float = 0.0
    answer: Answer | None = None


def encode(answer: Answer, *, keep_alive: bool) -> bytes:
    """The HTTP/1.1 response carrying ``answer``."""
    head = [
        f"HTTP/1.1 {answer.status} {_PHRASES.get(answer.status, '')}\r\n"
        f"content-type: {answer.content_type}\r\ncontent-length: {len(answer.body)}\r\n"
    ]
    head += [f"{name}: {value}\r\n" for name, value in answer.headers]
    if not keep_alive:
        head.append("connection: close\r\n")
    head.append("\r\n")
    return "".join(head).encode("latin-1") + answer.body


class AuthBackendServer:
    """Serves the auth backend's endpoints on a listening socket; ``async with AuthBackendServer(...)``.

    Args:
        backend: Answers the checks.
        guard: Who may ask.
        sock: A listening TCP socket (the hub binds it at start-up).
        prefix: Put before every path (the API's mount path, so brokers' URLs are the same on either port).
        max_head: Bytes of request line and headers.
        max_body: Bytes of body.
        max_pipelined: Requests read ahead of their answers on one connection.
        idle_timeout: Seconds a connection may send nothing before it is closed.
    """

    def __init__(
        self,
        backend: AuthBackend,
        guard: BackendGuard,
        sock: socket.socket,
        *,
        prefix: str = MOUNT_PATH,
        max_head: int = MAX_HEAD,
        max_body: int = CREDENTIALS_LIMIT,
        max_pipelined: int = 16,
        idle_timeout: float = 120.0,
    ) -> None:
        self.endpoints = endpoints(backend, guard, prefix=prefix)
        self.max_head = max_head
        self.max_body = max_body
        self.max_pipelined = max_pipelined
        self.idle_timeout = idle_timeout
        self.state = ServerState.CREATED
        self._socket = sock
        self._server: asyncio.Server | None = None
        self.connections: set[_Connection] = set()

    async def __aenter__(self) -> Self:
        if self.state is not ServerState.CREATED:
            raise StateError(f"the auth backend server can be started only once (it is {self.state.value})")
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), sock=self._socket)
        self.state = ServerState.RUNNING
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.state = ServerState.CLOSED
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.abort()
        if self._server is not None:
            await self._server.wait_closed()


class _Connection(asyncio.Protocol):
    """One broker's connection: parses its requests and writes their answers in order."""

    def __init__(self, server: AuthBackendServer) -> None:
        self._server = server
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._address = ""
        self._queue: deque[_Pending] = deque()
        self._wake = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._reading = True
        self._writing = True
        self._broken = False
        self._last_active = time.monotonic()
        self._idle: asyncio.TimerHandle | None = None
        self._reset_message()

    def _reset_message(self) -> None:
        self._url = b""
        self._head_size = 0
        self._authorization = ""
        self._content_type = ""
        self._body = bytearray()

    # --- transport callbacks ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self._transport = transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self._address = str(peer[0]) if peer else ""
        self._server.connections.add(self)
        loop = asyncio.get_running_loop()
        self._worker = loop.create_task(self._answer_in_order(), name="auth-backend-connection")
        self._idle = loop.call_later(self._server.idle_timeout, self._check_idle)

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.connections.discard(self)
        if self._worker is not None:
            self._worker.cancel()
        if self._idle is not None:
            self._idle.cancel()

    def data_received(self, data: bytes) -> None:
        if self._broken:
            return
        self._last_active = time.monotonic()
        try:
            self._parser.feed_data(data)
        except _Refused as refused:
            self._refuse(refused.answer)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            self._refuse(cause.answer if isinstance(cause, _Refused) else _error(400, "malformed HTTP request"))
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            self._refuse(_error(400, "malformed HTTP request"))

    def pause_writing(self) -> None:
        self._writing = False
        self._flow()

    def resume_writing(self) -> None:
        self._writing = True
        self._flow()

    def abort(self) -> None:
        """Close at once (the server is stopping)."""
        if self._transport is not None:
            self._transport.abort()

    # --- parser callbacks ------------------------------------------------------------------------

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._grow_head(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._grow_head(len(name) + len(value) + 4)
        lowered = name.lower()
        if lowered == b"authorization":
            self._authorization = value.decode("latin-1")
        elif lowered == b"content-type":
            self._content_type = value.decode("latin-1")
        elif lowered == b"content-length" and value.isdigit() and int(value) > self._server.max_body:
            raise _Refused(_error(413, f"the body may have at most {self._server.max_body} bytes"))
        elif lowered == b"expect" and value.lower() == b"100-continue" and not self._queue:
            assert self._transport is not None
            self._transport.write(_CONTINUE)

    def on_body(self, body: bytes) -> None:
        self._body += body
        if len(self._body) > self._server.max_body:
            raise _Refused(_error(413, f"the body may have at most {self._server.max_body} bytes"))

    def on_message_complete(self) -> None:
        started = time.perf_counter()
        keep_alive = self._parser.should_keep_alive()
        method = self._parser.get_method().decode("latin-1")
        url = httptools.parse_url(self._url)
        endpoint = self._server.endpoints.get(url.path.decode("latin-1"))
        pending = _Pending(keep_alive)
        if endpoint is None:
            pending.answer = _error(404, "no such auth backend endpoint")
        elif method not in METHODS:
            pending.answer = _error(405, "method not allowed", _ALLOW)
        else:
            pending.endpoint = endpoint
            pending.started = started
            pending.request = BackendRequest(
                self._address,
                self._authorization,
                (url.query or b"").decode("latin-1"),
                self._content_type,
                bytes(self._body),
            )
        self._reset_message()
        self._enqueue(pending)

    def _grow_head(self, size: int) -> None:
        self._head_size += size
        if self._head_size > self._server.max_head:
            raise _Refused(_error(431, f"the request line and headers may have at most {self._server.max_head} bytes"))

    # --- answering -------------------------------------------------------------------------------

    def _refuse(self, answer: Answer) -> None:
        """Answer a request the server will not read on, after those before it; then close."""
        self._broken = True
        self._enqueue(_Pending(keep_alive=False, answer=answer))

    def _enqueue(self, pending: _Pending) -> None:
        self._queue.append(pending)
        self._wake.set()
        self._flow()

    def _flow(self) -> None:
        """Read while answers are taken and few requests wait; otherwise stop reading (never buffer more)."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        wanted = self._writing and not self._broken and len(self._queue) < self._server.max_pipelined
        if wanted != self._reading:
            self._reading = wanted
            if wanted:
                transport.resume_reading()
            else:
                transport.pause_reading()

    async def _answer_in_order(self) -> None:
        transport = self._transport
        assert transport is not None
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            pending = self._queue.popleft()
            answer = pending.answer
            if answer is None:
                assert pending.endpoint is not None
                assert pending.request is not None
                answer = await pending.endpoint(pending.request, started=pending.started)
            if transport.is_closing():
                return
            transport.write(encode(answer, keep_alive=pending.keep_alive))
            if not pending.keep_alive:
                transport.close()
                return
            self._last_active = time.monotonic()
            self._flow()

    def _check_idle(self) -> None:
        timeout = self._server.idle_timeout
        quiet = time.monotonic() - self._last_active
        if quiet >= timeout and not self._queue and self._transport is not None:
            self._transport.close()
            return
        self._idle = asyncio.get_running_loop().call_later(max(timeout - quiet, 0.01), self._check_idle)


_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    431: "headers_too_large",
}


def _error(status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> Answer:
    return json_answer(error_body(message, _CODES[status]), status, headers)
