"""The FastAPI application factory."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

from mqtthub import __version__
from mqtthub.api import service
from mqtthub.api.errors import install_error_handlers
from mqtthub.auth.routes import identity_router

if TYPE_CHECKING:
    from mqtthub.hub import Hub


def create_app(hub: Hub) -> FastAPI:
    """The HTTP API of ``hub``, with every router mounted and errors mapped in one place."""
    app = FastAPI(
        title="mqtthub",
        version=__version__,
        summary="Embedded MQTT broker, device identity, telemetry and messaging API.",
    )
    app.state.hub = hub
    install_error_handlers(app)
    app.include_router(service.router)
    app.include_router(identity_router(hub.settings))
    return app
