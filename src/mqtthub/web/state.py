"""What the HTTP layer reads from the running hub: one typed :class:`AppState`, put on the app once.

The composition root builds it after every component started and :func:`install_state` puts it on the
FastAPI app. Endpoints never see the hub: they declare the pieces they use as dependencies, the shared ones
from :mod:`mqtthub.web.deps`, a domain's services with :func:`provide` (for instance
``Annotated[TelemetryService, Depends(provide(TelemetryService))]``), so this module names no domain.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from fastapi import FastAPI
from starlette.requests import HTTPConnection

from mqtthub.broker import BrokerHandle
from mqtthub.config import Settings
from mqtthub.crypto import SecretBox
from mqtthub.db import Database
from mqtthub.errors import StateError

T = TypeVar("T")

_ATTRIBUTE = "mqtthub"


@dataclass(frozen=True, kw_only=True)
class AppState:
    """The running hub's parts that endpoints use.

    Attributes:
        settings: the hub's settings.
        database: the open database (request sessions come from it).
        secrets: token hashing and secret encryption under the hub's key.
        broker: the broker, embedded or external (publishing, kicks, state and counters for ``/health``).
        started_at: when the hub was created (epoch seconds), for ``uptime``.
        services: the domain services (telemetry, messaging, integrations, password workers, login guard,
            certificate authority, ...), found by their type with :meth:`service`.
    """

    settings: Settings
    database: Database
    secrets: SecretBox
    broker: BrokerHandle
    started_at: float
    services: tuple[object, ...] = ()

    @property
    def uptime(self) -> float:
        """Seconds since the hub was created."""
        return time.time() - self.started_at

    def service(self, kind: type[T]) -> T:
        """The service of type ``kind``; a :class:`~mqtthub.errors.StateError` when the hub has none."""
        for each in self.services:
            if isinstance(each, kind):
                return each
        raise StateError(f"the hub runs no {kind.__name__}")


def install_state(app: FastAPI, state: AppState) -> None:
    """Put ``state`` on ``app`` (once, by the app factory)."""
    setattr(app.state, _ATTRIBUTE, state)


def app_state(connection: HTTPConnection) -> AppState:
    """The state of the app serving this request or WebSocket."""
    state = getattr(connection.app.state, _ATTRIBUTE, None)
    if not isinstance(state, AppState):
        raise StateError("the HTTP app has no mqtthub state (build it with mqtthub.api.app.create_app)")
    return state


def provide(kind: type[T]) -> Callable[[HTTPConnection], T]:
    """A FastAPI dependency answering the hub's service of type ``kind``."""

    def dependency(connection: HTTPConnection) -> T:
        return app_state(connection).service(kind)

    dependency.__name__ = f"provide_{kind.__name__}"
    return dependency
