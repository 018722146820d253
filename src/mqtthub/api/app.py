"""The FastAPI application factory."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from mqtthub import __version__
from mqtthub.api import service
from mqtthub.api.errors import install_error_handlers
from mqtthub.api.limits import CREDENTIALS_LIMIT, BodyLimitMiddleware, BodySize
from mqtthub.api.openapi import install_openapi
from mqtthub.auth.roles import enforce_role
from mqtthub.auth.routes import identity_router
from mqtthub.integrations import endpoints as integrations_endpoints
from mqtthub.messaging import endpoints as messaging_endpoints
from mqtthub.messaging import ws as messaging_ws
from mqtthub.observability.endpoint import METRICS_PATH, metrics_endpoint
from mqtthub.observability.http import HttpMetricsMiddleware
from mqtthub.realtime import websocket as realtime_ws
from mqtthub.realtime.socketio import SOCKETIO_PATH
from mqtthub.telemetry import endpoints as telemetry_endpoints

if TYPE_CHECKING:
    from mqtthub.hub import Hub


def create_app(hub: Hub) -> FastAPI:
    """The HTTP API of ``hub``, with every router mounted, errors mapped in one place and body sizes bounded.

    Middleware, outermost first: request metrics (when ``/metrics`` is on), CORS, unexpected errors as a
    500 JSON body, body limits.
    """
    app = FastAPI(
        title="mqtthub",
        version=__version__,
        summary="Embedded MQTT broker, device identity, telemetry and messaging API.",
        # Every route's role policy is checked before the route runs (and before its body is read).
        dependencies=[Depends(enforce_role)],
    )
    app.state.hub = hub
    settings = hub.settings
    app.include_router(service.router)
    app.include_router(identity_router(hub.login_guard, hub.ca))
    app.include_router(messaging_endpoints.router)
    app.include_router(integrations_endpoints.router)
    app.include_router(messaging_ws.router)
    app.include_router(telemetry_endpoints.router)
    app.include_router(realtime_ws.router)
    app.mount(f"/{SOCKETIO_PATH}", hub.socketio.asgi_app)
    if settings.metrics_enabled and settings.metrics_port is None:
        endpoint = metrics_endpoint(hub.metrics_registry, settings.metrics_token)
        app.add_route(METRICS_PATH, endpoint, methods=["GET"], include_in_schema=False)
    limits = {
        BodySize.DEFAULT: settings.http_max_body_size,
        BodySize.MESSAGE: settings.max_packet_size,
        BodySize.CREDENTIALS: CREDENTIALS_LIMIT,
    }
    app.add_middleware(BodyLimitMiddleware, limits=limits)
    install_error_handlers(app)
    install_openapi(app)
    origins = [origin.strip() for origin in settings.cors_origins.split(",") if origin.strip()]
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=["Retry-After"],
    )
    if settings.metrics_enabled:
        app.add_middleware(HttpMetricsMiddleware, metrics=hub.http_metrics)
    return app
