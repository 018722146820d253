"""Request body limits per route, answered 413 before the body is read.

Each endpoint names the size class of what it accepts with :func:`body_size`:

- ``BodySize.MESSAGE``: a message for the broker (publish, device messages, commands,
  broadcasts) may be as large as the broker's maximum packet size (``max_packet_size``);
- ``BodySize.CREDENTIALS``: a login, a few kilobytes (:data:`CREDENTIALS_LIMIT`);
- anything else: ``http_max_body_size`` (1 MiB by default).

:class:`BodyLimitMiddleware` enforces the limit on the first read of the body, when routing
has chosen the endpoint: a ``Content-Length`` above the limit is refused without reading a
byte; a body without one (chunked) is counted as it streams and refused as soon as it
passes the limit. WebSocket and lifespan traffic pass untouched.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, TypeVar

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

F = TypeVar("F", bound=Callable[..., Any])

CREDENTIALS_LIMIT = 8 * 1024
"""Bytes a login body may have: an e-mail and a password of the longest accepted lengths, JSON-escaped."""

_SIZE = "__mqtthub_body_size__"


class BodySize(enum.Enum):
    """What an endpoint's body is, which decides how large it may be."""

    DEFAULT = "default"
    MESSAGE = "message"
    CREDENTIALS = "credentials"


def body_size(size: BodySize) -> Callable[[F], F]:
    """Declare the size class of an endpoint's request body (put it under the route decorator)."""

    def mark(endpoint: F) -> F:
        setattr(endpoint, _SIZE, size)
        return endpoint

    return mark


def size_of(endpoint: object) -> BodySize:
    """The size class an endpoint declared, ``DEFAULT`` when it declared none."""
    size = getattr(endpoint, _SIZE, BodySize.DEFAULT)
    return size if isinstance(size, BodySize) else BodySize.DEFAULT


class RequestTooLargeError(HTTPException):
    """The request body is above the route's limit (HTTP 413).

    An ``HTTPException`` so that FastAPI's body parsing passes it through unchanged.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"request body larger than {limit} bytes")
        self.limit = limit


class BodyLimitMiddleware:
    """ASGI middleware applying the per-route body limits (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, limits: dict[BodySize, int]) -> None:
        self.app = app
        self.limits = {size: limits.get(size, limits[BodySize.DEFAULT]) for size in BodySize}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        length = int(declared) if declared is not None and declared.isdigit() else None
        received = 0
        responding = False

        async def limited_receive() -> Message:
            nonlocal received
            if responding:  # waiting for a disconnect while answering: the body no longer matters
                return await receive()
            # Routing has run by now: the chosen endpoint is in the (shared) scope.
            limit = self.limits[size_of(scope.get("endpoint"))]
            if length is not None and length > limit:
                raise RequestTooLargeError(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise RequestTooLargeError(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal responding
            responding = True
            await send(message)

        await self.app(scope, limited_receive, tracking_send)
