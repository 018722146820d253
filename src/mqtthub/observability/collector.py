"""The hub's Prometheus collector: reads every component's counters when ``/metrics`` is scraped.

Nothing here runs per message. Each scrape takes one snapshot of the broker's counters, the
ingest writer's, the authenticator's, the integrations' and the HTTP middleware's, and yields
them as metric families. A component that is not running (the hub starting or stopping, an
external broker) is skipped rather than failing the scrape.

Labels are bounded by construction: reason names, state names, principal kinds, action types
and route templates come from the code, never from clients. Organization ids appear only when
``metrics_organization_labels`` is on; device ids and topics never.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Protocol

from prometheus_client import PlatformCollector, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from mqtthub import __version__
from mqtthub.errors import StateError
from mqtthub.observability.http import HttpMetrics
from mqtthub.observability.series import (
    auth_backend_families,
    auth_families,
    background_families,
    broker_families,
    integration_families,
    telemetry_families,
)

if TYPE_CHECKING:
    from mqtthub.auth.broker_hooks import DatabaseAuthenticator
    from mqtthub.authbackend.common import AuthBackend
    from mqtthub.background import BackgroundTasks
    from mqtthub.broker.handle import BrokerHandle
    from mqtthub.config import Settings
    from mqtthub.integrations.service import IntegrationService
    from mqtthub.messaging.service import MessagingService
    from mqtthub.observability.auth_checks import AuthChecks
    from mqtthub.telemetry import TelemetryService


class MetricsSource(Protocol):
    """The components a scrape reads (the hub provides them); each raises StateError while it is not running."""

    @property
    def settings(self) -> Settings: ...
    @property
    def uptime(self) -> float: ...
    @property
    def auth_checks(self) -> AuthChecks: ...
    @property
    def broker(self) -> BrokerHandle: ...
    @property
    def authenticator(self) -> DatabaseAuthenticator: ...
    @property
    def auth_backend(self) -> AuthBackend: ...
    @property
    def telemetry(self) -> TelemetryService: ...
    @property
    def messaging(self) -> MessagingService: ...
    @property
    def integrations(self) -> IntegrationService: ...
    def background(self) -> Iterable[BackgroundTasks]: ...


class HubCollector(Collector):
    """Yields the hub's metric families (see the module docstring and the README's "Monitoring")."""

    def __init__(self, hub: MetricsSource, http: HttpMetrics) -> None:
        self._hub = hub
        self._http = http

    def collect(self) -> Iterator[Metric]:
        """One scrape: every family of every running component."""
        info = GaugeMetricFamily("mqtthub_info", "The hub's version (value 1).", labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        uptime = GaugeMetricFamily("mqtthub_uptime_seconds", "Seconds since the hub started.")
        uptime.add_metric([], self._hub.uptime)
        yield uptime
        yield from self._http.families()
        hub = self._hub
        sections: tuple[Callable[[], Iterable[Metric]], ...] = (
            lambda: broker_families(hub.broker, hub.settings, hub.authenticator),
            lambda: auth_families(hub.auth_checks, hub.authenticator),
            lambda: auth_backend_families(hub.auth_backend),
            lambda: telemetry_families(hub.telemetry, hub.messaging),
            lambda: integration_families(hub.integrations),
            lambda: background_families(hub.background()),
        )
        for section in sections:
            try:
                yield from section()
            except StateError:
                continue  # that component is not running (starting, stopping or external)


def hub_registry(hub: MetricsSource, http: HttpMetrics) -> CollectorRegistry:
    """A registry of its own per hub (several hubs may share a process in tests), with process metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HubCollector(hub, http))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry
