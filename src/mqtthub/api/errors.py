"""The one place where exceptions become HTTP responses.

Every :class:`~mqtthub.errors.MQTTHubError` becomes ``{"success": false, "error": …,
"code": …, "detail": …}`` with the exception's status code. ``detail`` repeats the
message so FastAPI-style clients that read ``detail`` see it too; 429 responses carry
``Retry-After``. Request validation keeps FastAPI's 422 shape (``{"detail": [...]}``),
which the reference documents rely on.
"""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from mqtthub.errors import MQTTHubError, RateLimitedError, UnauthenticatedError, ValidationFailedError

logger = logging.getLogger(__name__)


def error_body(error: str, code: str) -> dict[str, object]:
    """The JSON body of an error response."""
    return {"success": False, "error": error, "code": code, "detail": error}


async def _hub_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MQTTHubError)
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimitedError):
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    if isinstance(exc, UnauthenticatedError):
        headers["WWW-Authenticate"] = "Bearer"
    body = error_body(exc.message, exc.code)
    if isinstance(exc, ValidationFailedError) and exc.field:
        body["field"] = exc.field
    if exc.status_code >= 500:
        logger.error("%s %s failed: %s", request.method, request.url.path, exc.message)
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Register the mapping on ``app``."""
    app.add_exception_handler(MQTTHubError, _hub_error)
