"""The auth-backend endpoints as one small ASGI app, mounted by the API at ``/auth-backend`` or on a port of its own.

Each contract module lists its endpoints as ``(path, check, handler)``; this module serves them under the
contract's prefix (``/auth-backend/mosquitto/...``) with what every endpoint needs around it: the guard
(:mod:`mqtthub.authbackend.guard`), the request's fields, the latency histogram, and the mapping of failures
to answers every broker reads as "no": 400 for a malformed request, 503 when the hub cannot decide now
(database down, password workers busy), 500 for a bug, each with the hub's JSON error body.

A plain Starlette app rather than FastAPI routes: these are not part of the API (no OpenAPI, no roles, no
users), and the less runs per check the better, since a broker asks once per connection and topic. On its own
port (``auth_backend_port``) it also skips the API's middleware (request metrics, CORS, body limits), which cost
several times what a cached check does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mqtthub.authbackend import emqx, goauth, rabbitmq
from mqtthub.authbackend.common import AuthBackend, request_fields
from mqtthub.authbackend.guard import BackendGuard
from mqtthub.broker.episodes import EpisodeLog
from mqtthub.db.faults import unavailable
from mqtthub.errors import UnavailableError, ValidationFailedError
from mqtthub.web.errors import error_body
from mqtthub.web.limits import CREDENTIALS_LIMIT, BodyLimitMiddleware, BodySize

logger = logging.getLogger(__name__)
_episodes = EpisodeLog()  # a misconfigured broker asks thousands of times: one line per episode

MOUNT_PATH = "/auth-backend"

Handler = Callable[[AuthBackend, Request, dict[str, str]], Awaitable[Response]]

CONTRACTS: dict[str, Iterable[tuple[str, str, Handler]]] = {
    goauth.CONTRACT: goauth.ROUTES,
    emqx.CONTRACT: emqx.ROUTES,
    rabbitmq.CONTRACT: rabbitmq.ROUTES,
}
"""Each contract's name (its path prefix) and endpoints."""


def auth_backend_app(backend: AuthBackend, guard: BackendGuard, *, prefix: str = "") -> Starlette:
    """The app serving every contract's endpoints (GET, POST and PUT: brokers may be set to any of them).

    ``prefix``: put before every path (:data:`MOUNT_PATH` when the app has a port of its own, so the brokers'
    URLs keep their paths).
    """
    routes = [
        Route(
            f"{prefix}/{contract}{path}",
            _endpoint(backend, guard, contract, check, handler),
            methods=["GET", "POST", "PUT"],
        )
        for contract, endpoints in CONTRACTS.items()
        for path, check, handler in endpoints
    ]
    # Brokers send a few fields: 8 KiB is plenty, also on the port of its own, where the API's limits do not run.
    limits = {BodySize.DEFAULT: CREDENTIALS_LIMIT}
    return Starlette(routes=routes, middleware=[Middleware(BodyLimitMiddleware, limits=limits)])


def _endpoint(
    backend: AuthBackend, guard: BackendGuard, contract: str, check: str, handler: Handler
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        started = time.perf_counter()
        try:
            refusal = guard.refusal(request)
            if refusal is not None:
                backend.refused_requests[refusal.reason] += 1
                host = request.client.host if request.client is not None else "?"
                _episodes(
                    logger, logging.WARNING, (refusal.reason, host), "auth backend: %s: %s", host, refusal.message
                )
                headers = (
                    {"WWW-Authenticate": 'Basic realm="mqtthub auth backend"'} if refusal.status_code == 401 else {}
                )
                code = "unauthorized" if refusal.status_code == 401 else "forbidden"
                return JSONResponse(error_body(refusal.message, code), refusal.status_code, headers=headers)
            return await handler(backend, request, await request_fields(request))
        except HTTPException:
            raise  # 413 from the body limit: Starlette answers it
        except ValidationFailedError as exc:
            backend.count(contract, check, None)
            return JSONResponse(error_body(exc.message, "bad_request"), 400)
        except Exception as exc:
            backend.count(contract, check, None)
            if isinstance(exc, UnavailableError) or unavailable(exc) is not None:
                logger.warning("auth backend: %s %s check not answered: %s", contract, check, exc)
                return JSONResponse(error_body("the hub cannot answer now", "unavailable"), 503)
            logger.exception("auth backend: %s %s check failed", contract, check)
            return JSONResponse(error_body("internal server error", "internal_error"), 500)
        finally:
            backend.observe(started)

    return endpoint
