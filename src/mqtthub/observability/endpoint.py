"""``GET /metrics``: the Prometheus text exposition of a hub's registry, optionally behind a bearer token.

Served on the HTTP API's port, or on a port of its own (``metrics_port``) by :func:`metrics_app`
so that it can stay off the network the API is published on.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mqtthub.web.errors import error_body

METRICS_PATH = "/metrics"

Endpoint = Callable[[Request], Awaitable[Response]]


def metrics_endpoint(registry: CollectorRegistry, token: str | None) -> Endpoint:
    """The handler of ``GET /metrics``; with ``token`` set, a request must carry ``Authorization: Bearer <token>``."""
    expected = token.encode() if token is not None else None

    async def metrics(request: Request) -> Response:
        if expected is not None:
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
                return JSONResponse(
                    error_body("a valid bearer token is required to read metrics", "unauthorized"),
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return metrics


def metrics_app(endpoint: Endpoint) -> Starlette:
    """An application serving only ``GET /metrics``, for the separate metrics port."""
    return Starlette(routes=[Route(METRICS_PATH, endpoint, methods=["GET"])])
