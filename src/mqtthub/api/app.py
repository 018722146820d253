"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from prometheus_client.registry import CollectorRegistry
from starlette.types import ASGIApp

from mqtthub import __version__
from mqtthub.api import service
from mqtthub.auth.attempts import LoginGuard
from mqtthub.auth.ca import CertificateAuthority
from mqtthub.auth.roles import enforce_role
from mqtthub.auth.routes import identity_router
from mqtthub.authbackend.app import auth_backend_app
from mqtthub.authbackend.common import AuthBackend
from mqtthub.authbackend.dispatch import MOUNT_PATH
from mqtthub.authbackend.guard import BackendGuard
from mqtthub.console import install_console
from mqtthub.integrations import endpoints as integrations_endpoints
from mqtthub.messaging import clients as broker_clients
from mqtthub.messaging import endpoints as messaging_endpoints
from mqtthub.messaging import retained as broker_retained
from mqtthub.messaging import ws as messaging_ws
from mqtthub.observability.endpoint import METRICS_PATH, metrics_endpoint
from mqtthub.observability.http import HttpMetrics, HttpMetricsMiddleware
from mqtthub.realtime import websocket as realtime_ws
from mqtthub.realtime.socketio import SOCKETIO_PATH
from mqtthub.telemetry import endpoints as telemetry_endpoints
from mqtthub.web.errors import install_error_handlers
from mqtthub.web.limits import CREDENTIALS_LIMIT, BodyLimitMiddleware, BodySize
from mqtthub.web.openapi import install_openapi
from mqtthub.web.state import AppState, install_state


def create_app(
    state: AppState, *, socketio: ASGIApp, metrics_registry: CollectorRegistry, http_metrics: HttpMetrics
) -> FastAPI:
    """The HTTP API over ``state``, with every router mounted, errors mapped in one place and body sizes bounded.

    ``socketio`` is mounted at ``/socket.io``, the auth backend of external brokers at ``/auth-backend`` when
    ``auth_backend_secret`` is set and it has no port of its own; ``metrics_registry`` is served at ``/metrics``
    when it is on and has no port of its own; ``http_metrics`` counts requests when ``/metrics`` is on.

    Middleware, outermost first: request metrics (when ``/metrics`` is on), CORS, unexpected errors as a
    500 JSON body, body limits.
    """
    app = FastAPI(
        title="mqtthub",
        version=__version__,
        summary="Embedded MQTT broker, device identity, telemetry and messaging API.",
        # Every route's role policy is checked before the route runs (and before its body is read).
        dependencies=[Depends(enforce_role)],
        # Served from the package's own assets by the console (mqtthub.console.docs): no CDN.
        docs_url=None,
        redoc_url=None,
    )
    install_state(app, state)
    settings = state.settings
    app.include_router(service.router)
    app.include_router(identity_router(state.service(LoginGuard), state.service(CertificateAuthority)))
    app.include_router(messaging_endpoints.router)
    app.include_router(broker_clients.router)
    app.include_router(broker_retained.router)
    app.include_router(integrations_endpoints.router)
    app.include_router(messaging_ws.router)
    app.include_router(telemetry_endpoints.router)
    app.include_router(realtime_ws.router)
    app.mount(f"/{SOCKETIO_PATH}", socketio)
    if (guard := BackendGuard.from_settings(settings)) is not None and settings.auth_backend_port is None:
        app.mount(MOUNT_PATH, auth_backend_app(state.service(AuthBackend), guard))
    install_console(app)
    if settings.metrics_enabled and settings.metrics_port is None:
        endpoint = metrics_endpoint(metrics_registry, settings.metrics_token)
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
        app.add_middleware(HttpMetricsMiddleware, metrics=http_metrics)
    return app
