"""Service endpoints: ``GET /`` and ``GET /health`` (also at ``/api/v1/health``, where document 001 checks it)."""

from __future__ import annotations

from typing import NotRequired

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict
from typing_extensions import TypedDict

from mqtthub import __version__
from mqtthub.broker import BrokerState
from mqtthub.db.location import disk_free
from mqtthub.messaging.service import MessagingService
from mqtthub.telemetry import TelemetryService
from mqtthub.telemetry.schemas import IngestHealth
from mqtthub.web.deps import StateDep
from mqtthub.web.state import AppState

router = APIRouter(tags=["service"])


class ServiceInfo(BaseModel):
    """What ``GET /`` answers."""

    service: str
    version: str
    status: str
    links: dict[str, str]


def wants_html(request: Request) -> bool:
    """Whether the client is a browser asking for a page (``Accept`` names ``text/html``)."""
    return "text/html" in request.headers.get("accept", "")


@router.get(
    "/",
    response_model=ServiceInfo,
    summary="Service information",
    responses={307: {"description": "A browser (`Accept: text/html`) is sent to the web console at `/ui`"}},
)
async def service_info(request: Request) -> ServiceInfo | RedirectResponse:
    """Name, version and where to go next; a browser is sent to the web console."""
    if wants_html(request):
        return RedirectResponse("/ui", status_code=307)
    return ServiceInfo(
        service="mqtthub",
        version=__version__,
        status="running",
        links={"health": "/health", "docs": "/docs", "redoc": "/redoc", "openapi": "/openapi.json", "console": "/ui"},
    )


class DatabaseHealth(TypedDict):
    """The ``database`` component: ``down`` when it does not answer a ping or its disk is nearly full."""

    status: str
    dialect: str
    diskFreeBytes: NotRequired[int]
    reason: NotRequired[str]


class BrokerHealth(TypedDict):
    """The ``broker`` component, with its connected clients and subscriptions while it runs."""

    status: str
    clients: NotRequired[int]
    subscriptions: NotRequired[int]


class BrokerStateHealth(TypedDict):
    """The ``brokerState`` component (when broker persistence is on): ``down`` while its writes fail."""

    status: str
    mode: str
    reason: NotRequired[str]
    failedAttempts: NotRequired[int]


class HealthComponents(TypedDict):
    """Each component's status (``up`` or ``down``) and what explains it."""

    database: DatabaseHealth
    broker: BrokerHealth
    brokerState: NotRequired[BrokerStateHealth]
    ingest: IngestHealth


class HealthReport(BaseModel):
    """What ``GET /health`` answers (the messaging counters are totals over every organization)."""

    model_config = ConfigDict(extra="allow")

    status: str
    version: str
    uptime: float
    mqtt_connected: bool
    message_count: int | None
    active_subscriptions: int
    websocket_connections: int
    components: HealthComponents


@router.get(
    "/health",
    summary="Health check",
    response_model=HealthReport,
    responses={503: {"description": "A component is down", "model": HealthReport}},
)
@router.get(
    "/api/v1/health",
    summary="Health check (under the API prefix)",
    response_model=HealthReport,
    responses={503: {"description": "A component is down", "model": HealthReport}},
)
async def health(state: StateDep, response: Response) -> HealthReport:
    """``status`` is ``healthy`` when every component is up (HTTP 200), else ``degraded`` (HTTP 503)."""
    report = await health_report(state)
    if report.status != "healthy":
        response.status_code = 503
    return report


async def health_report(state: AppState) -> HealthReport:
    """The body of ``GET /health``: the status of each component, then the messaging counters."""
    database, settings = state.database, state.settings
    database_up = await database.ping()
    broker_up = state.broker.state is BrokerState.RUNNING
    database_report: DatabaseHealth = {"status": "up" if database_up else "down", "dialect": database.dialect}
    broker_report: BrokerHealth = {"status": "up" if broker_up else "down"}
    free = disk_free(database.url)
    if free is not None:
        # A full disk does not stop a ping (reads work): said here before the next write fails on it.
        database_report["diskFreeBytes"] = free
        if free < settings.database_min_free_mb * 1024 * 1024:
            database_report["status"], database_report["reason"] = "down", "disk full"
    # A database that answers a ping can still refuse writes (disk full, read-only): the writer knows.
    components: HealthComponents = {
        "database": database_report,
        "broker": broker_report,
        "ingest": state.service(TelemetryService).health(),
    }
    if broker_up:
        stats = state.broker.stats()
        broker_report["clients"], broker_report["subscriptions"] = stats.clients_connected, stats.subscriptions
        if settings.broker_persistence != "off":
            # Retained messages and sessions written to data_dir/broker-state.db (README "Durability").
            error = stats.state_write_error
            state_report: BrokerStateHealth = {
                "status": "up" if error is None else "down",
                "mode": settings.broker_persistence,
            }
            if error is not None:
                state_report["reason"], state_report["failedAttempts"] = error, stats.state_write_failures
            components["brokerState"] = state_report
    statuses = [database_report["status"], broker_report["status"], components["ingest"]["status"]]
    if "brokerState" in components:
        statuses.append(components["brokerState"]["status"])
    healthy = all(status == "up" for status in statuses)
    messaging = await state.service(MessagingService).health()
    return HealthReport(
        status="healthy" if healthy else "degraded",
        version=__version__,
        uptime=round(state.uptime, 3),
        **messaging,
        components=components,
    )
