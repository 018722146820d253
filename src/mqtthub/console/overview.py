"""The overview page: the hub's traffic and the organization's devices, alerts and last errors, live.

The page is drawn once; ``console.js`` then reads :func:`figures` every two seconds and redraws the figures,
the rate charts (rates are differences between two readings of the hub's running totals) and the lists.
The hub figures are the broker's and the ingest writer's totals, the same every organization sees on
``/health``; the rest is the organization's own.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import func, select
from starlette.responses import Response

from mqtthub.console.routing import ConsoleRoute
from mqtthub.console.session import PREFIX
from mqtthub.console.templating import OrgFrame, render
from mqtthub.db.base import utcnow
from mqtthub.models import Device, DeviceStatus, RejectedMessage, TelemetryAlert
from mqtthub.telemetry.endpoints import TelemetryDep
from mqtthub.telemetry.events import iso
from mqtthub.web.deps import SessionDep, StateDep

RECENT = 5
"""How many of the latest alerts and rejected messages the page lists."""
ALERT_WINDOW = timedelta(hours=24)
"""Alerts younger than this count as open."""

router = APIRouter(prefix=PREFIX + "/orgs/{org_id}", route_class=ConsoleRoute, include_in_schema=False)


@router.get("", summary="Overview")
async def overview(request: Request, frame: OrgFrame) -> Response:
    """The overview page (its figures arrive from :func:`figures`)."""
    return render(request, "overview.html", {"frame": frame, "nav": "overview"})


@router.get("/figures", summary="Overview figures")
async def figures(frame: OrgFrame, session: SessionDep, state: StateDep, telemetry: TelemetryDep) -> dict[str, Any]:
    """The figures of the overview page, as JSON."""
    org = frame.org.id
    stats = state.broker.stats()
    devices = await session.scalar(select(func.count()).select_from(Device).where(Device.organization_id == org))
    online = await session.scalar(
        select(func.count())
        .select_from(DeviceStatus)
        .join(Device, Device.id == DeviceStatus.device_id)
        .where(Device.organization_id == org, DeviceStatus.online.is_(True))
    )
    alerts = TelemetryAlert.organization_id == org
    open_alerts = await session.scalar(
        select(func.count())
        .select_from(TelemetryAlert)
        .where(alerts, TelemetryAlert.created_at >= utcnow() - ALERT_WINDOW)
    )
    latest_alerts = await session.scalars(
        select(TelemetryAlert).where(alerts).order_by(TelemetryAlert.created_at.desc()).limit(RECENT)
    )
    rejected = await session.scalars(
        select(RejectedMessage)
        .where(RejectedMessage.organization_id == org)
        .order_by(RejectedMessage.id.desc())
        .limit(RECENT)
    )
    return {
        "at": time.time(),
        "hub": {
            "clients": stats.clients_connected,
            "received": stats.messages_received,
            "sent": stats.messages_sent,
            "ingested": telemetry.writer.written,
            "ingest": telemetry.health()["status"],
        },
        "organization": {"devices": devices or 0, "online": online or 0, "openAlerts": open_alerts or 0},
        "alerts": [
            {
                "deviceId": alert.device_id,
                "sensor": alert.sensor,
                "kind": alert.kind,
                "value": alert.value,
                "at": iso(alert.created_at),
            }
            for alert in latest_alerts
        ],
        "rejected": [
            {
                "deviceId": row.device_id,
                "topic": row.topic,
                "field": row.field,
                "reason": row.reason,
                "at": iso(row.received_at),
            }
            for row in rejected
        ],
    }
