"""Service endpoints: ``GET /`` and ``GET /health`` (also at ``/api/v1/health``, where document 001 checks it)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from mqtthub import __version__
from mqtthub.api.deps import get_hub

router = APIRouter(tags=["service"])


class ServiceInfo(BaseModel):
    """What ``GET /`` answers."""

    service: str
    version: str
    status: str
    links: dict[str, str]


@router.get("/", response_model=ServiceInfo, summary="Service information")
async def service_info() -> ServiceInfo:
    """Name, version and where to go next."""
    return ServiceInfo(
        service="mqtthub",
        version=__version__,
        status="running",
        links={"health": "/health", "docs": "/docs", "redoc": "/redoc", "openapi": "/openapi.json"},
    )


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
    components: dict[str, dict[str, Any]]


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
async def health(request: Request) -> JSONResponse:
    """``status`` is ``healthy`` when every component is up (HTTP 200), else ``degraded`` (HTTP 503)."""
    report: dict[str, Any] = await get_hub(request).health()
    return JSONResponse(report, status_code=200 if report["status"] == "healthy" else 503)
