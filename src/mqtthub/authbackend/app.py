"""The auth-backend endpoints as a small ASGI app, mounted by the API at ``/auth-backend``.

Each request becomes a :class:`~mqtthub.authbackend.dispatch.BackendRequest` for the endpoint of its path
(:mod:`mqtthub.authbackend.dispatch`), behind the body limit the API's other login endpoints have. A plain
Starlette app rather than FastAPI routes: these are not part of the API (no OpenAPI, no roles, no users). On a
port of its own (``auth_backend_port``) the same endpoints are served by :mod:`mqtthub.authbackend.server`, which
skips the API's middleware and HTTP stack and costs a fraction of this per check.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mqtthub.authbackend.common import AuthBackend
from mqtthub.authbackend.dispatch import METHODS, BackendRequest, Endpoint, endpoints
from mqtthub.authbackend.guard import BackendGuard
from mqtthub.web.limits import CREDENTIALS_LIMIT, BodyLimitMiddleware, BodySize


def auth_backend_app(backend: AuthBackend, guard: BackendGuard) -> Starlette:
    """The app serving every contract's endpoints at ``/<contract>/<check>``."""
    routes = [
        Route(path, _serve(endpoint), methods=list(METHODS)) for path, endpoint in endpoints(backend, guard).items()
    ]
    # Brokers send a few fields: 8 KiB is plenty.
    limits = {BodySize.DEFAULT: CREDENTIALS_LIMIT}
    return Starlette(routes=routes, middleware=[Middleware(BodyLimitMiddleware, limits=limits)])


def _serve(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    async def serve(request: Request) -> Response:
        asked = BackendRequest(
            address=request.client.host if request.client is not None else "",
            authorization=request.headers.get("authorization", ""),
            query=request.url.query,
            content_type=request.headers.get("content-type", ""),
            body=await request.body(),
        )
        answer = await endpoint(asked)
        response = Response(answer.body, answer.status, media_type=answer.content_type)
        for name, value in answer.headers:
            response.headers[name] = value
        return response

    return serve
