"""The one place where exceptions become HTTP responses.

Every 4xx and 5xx answer has the same JSON body, ``{"success": false, "error": …, "code": …,
"detail": …}`` (:class:`~mqtthub.web.openapi.ErrorResponse`):

- a :class:`~mqtthub.errors.MQTTHubError` gets its status code and ``code``; ``detail`` repeats
  the message so FastAPI-style clients that read ``detail`` see it too; 429 (and a 503 that knows
  when to come back) carries ``Retry-After``;
- request validation keeps FastAPI's 422 ``detail`` list (the reference documents rely on it),
  with the inputs of secret fields redacted (:mod:`mqtthub.web.redaction`);
- Starlette's own errors (404 for an unknown path, 405, 400 for an unparsable body, 413 from
  :mod:`mqtthub.web.limits`) keep their status and headers;
- a number too large for the database is a 422, not a crash;
- a database that is down or refuses writes (:func:`mqtthub.db.faults.unavailable`) is a 503
  with ``Retry-After``;
- anything else is logged with its traceback and answered 500 without internals
  (:class:`UnhandledErrorMiddleware`).
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mqtthub.db.faults import RETRY_AFTER, unavailable
from mqtthub.errors import (
    MQTTHubError,
    RateLimitedError,
    UnauthenticatedError,
    UnavailableError,
    ValidationFailedError,
)
from mqtthub.web.redaction import redact_issue

logger = logging.getLogger(__name__)

INTERNAL_ERROR = "internal server error"
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "unavailable",
}


def error_body(error: str, code: str, detail: Any = None) -> dict[str, Any]:
    """The JSON body of an error response; ``detail`` defaults to the message."""
    return {"success": False, "error": error, "code": code, "detail": error if detail is None else detail}


async def _hub_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MQTTHubError)
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimitedError | UnavailableError) and exc.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    if isinstance(exc, UnauthenticatedError):
        headers["WWW-Authenticate"] = "Bearer"
    body = error_body(exc.message, exc.code)
    if isinstance(exc, ValidationFailedError) and exc.field:
        body["field"] = exc.field
    if exc.status_code >= 500:
        logger.error("%s %s failed: %s", request.method, request.url.path, exc.message)
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


def _summary(issues: list[dict[str, Any]]) -> str:
    if not issues:
        return "invalid request"
    first = issues[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
    return f"{where}: {first.get('msg', 'invalid')}{more}" if where else f"{first.get('msg', 'invalid')}{more}"


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    issues = [redact_issue(issue) for issue in exc.errors()]
    issues = jsonable_encoder(issues)
    return JSONResponse(error_body(_summary(issues), "validation_error", issues), status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    code = _HTTP_CODES.get(exc.status_code, "internal_error" if exc.status_code >= 500 else "http_error")
    return JSONResponse(error_body(message, code), status_code=exc.status_code, headers=exc.headers)


async def _overflow(request: Request, exc: Exception) -> JSONResponse:
    logger.info("%s %s: a number is out of range (%s)", request.method, request.url.path, exc)
    return JSONResponse(error_body("a number is out of the accepted range", "validation_error"), status_code=422)


class UnhandledErrorMiddleware:
    """Answer an unexpected exception with a 500 JSON error body, and log it with its traceback.

    It sits inside the CORS middleware, so even a 500 carries the CORS headers a browser
    needs to read it. When the response had already started, the exception goes on up
    (the server then drops the connection).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            fault = unavailable(exc)
            if fault is not None:
                # The database is down or refusing writes: not a bug, and worth a retry later.
                logger.warning("%s %s: database unavailable (%s)", scope.get("method"), scope.get("path"), fault.reason)
                response = JSONResponse(
                    error_body(f"the database is unavailable ({fault.reason})", "unavailable"),
                    status_code=503,
                    headers={"Retry-After": str(RETRY_AFTER)},
                )
            else:
                logger.exception("%s %s failed with an unexpected error", scope.get("method"), scope.get("path"))
                response = JSONResponse(error_body(INTERNAL_ERROR, "internal_error"), status_code=500)
            if started:
                raise
            await response(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """Register the mapping on ``app`` (call before adding the CORS middleware, which must wrap it)."""
    app.add_exception_handler(MQTTHubError, _hub_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(OverflowError, _overflow)
    app.add_middleware(UnhandledErrorMiddleware)
