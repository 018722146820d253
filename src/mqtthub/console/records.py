"""A device's alerts and rejected messages on its page: what ingestion raised or refused, and why.

The part is loaded by htmx when the device page opens (and again with its Refresh button), read through the
same functions as ``GET /devices/{id}/alerts`` and ``GET /organizations/{id}/rejected-messages``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from mqtthub.auth.devices import get_device
from mqtthub.console.routing import ConsoleRoute
from mqtthub.console.session import PREFIX
from mqtthub.console.templating import OrgFrame, render
from mqtthub.telemetry.records import alerts, rejected_messages
from mqtthub.web.deps import SessionDep

SHOWN = 20
"""Alerts and rejected messages listed on the device page (the newest of each)."""
PAYLOAD_SHOWN = 200
"""Characters of a rejected payload shown (the API has it whole)."""

router = APIRouter(
    prefix=PREFIX + "/orgs/{org_id}/devices/{device_id}", route_class=ConsoleRoute, include_in_schema=False
)


@router.get("/records", summary="A device's alerts and rejected messages")
async def records_part(request: Request, device_id: str, frame: OrgFrame, session: SessionDep) -> Response:
    """The newest alerts and rejected messages of the device."""
    device = await get_device(session, frame.org.id, device_id)
    context = {
        "frame": frame,
        "device": device,
        "alerts": await alerts(session, frame.org.id, device_id=device.id, limit=SHOWN),
        "rejected": await rejected_messages(session, frame.org.id, device_id=device.id, limit=SHOWN),
        "payload_shown": PAYLOAD_SHOWN,
    }
    return render(request, "partials/device_records.html", context)
