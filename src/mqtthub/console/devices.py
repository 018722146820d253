"""The devices pages: the list (search, paging, live status), one device (edit, disable, delete) and its tokens.

Each action calls the same functions as the API's device and token endpoints, after the same role gate
(:mod:`mqtthub.auth.roles`) and the same organization check, so the console can do nothing the API would
refuse. A new token's secret is shown once, in the answer to the request that created it, and is never
put in a URL. Status changes arrive live: ``console.js`` follows ``devices/+/status`` on
``WS /api/v1/stream`` and updates the rows and the device page in place, after reading the shown devices'
statuses again (``/statuses``) each time the stream is subscribed.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import RedirectResponse, Response

from mqtthub.auth.device_tokens import issue_device_token, list_device_tokens, revoke_device_token
from mqtthub.auth.devices import create_device, delete_device, get_device, search_devices, set_device_enabled
from mqtthub.auth.roles import Operation
from mqtthub.console.routing import ConsoleRoute
from mqtthub.console.session import PREFIX
from mqtthub.console.templating import OrgFrame, is_htmx, render
from mqtthub.models import Device, DeviceStatus
from mqtthub.telemetry.events import status_json
from mqtthub.telemetry.schemas import StatusJson
from mqtthub.web.deps import SecretsDep, SessionDep, SettingsDep

PAGE_SIZE = 50
"""Devices per page of the list."""
MAX_PAGE = 2**31 // PAGE_SIZE

router = APIRouter(prefix=PREFIX + "/orgs/{org_id}/devices", route_class=ConsoleRoute, include_in_schema=False)

Name = Annotated[str, Form(min_length=1, max_length=200)]


async def _statuses(session: AsyncSession, devices: list[Device]) -> dict[str, DeviceStatus]:
    if not devices:
        return {}
    rows = await session.scalars(select(DeviceStatus).where(DeviceStatus.device_id.in_([d.id for d in devices])))
    return {row.device_id: row for row in rows}


@router.get("", summary="Devices")
async def list_page(
    request: Request,
    frame: OrgFrame,
    session: SessionDep,
    q: Annotated[str, Query(max_length=200)] = "",
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
) -> Response:
    """One page of the organization's devices; htmx (the search box) gets only the table."""
    search = q.strip()
    devices, total = await search_devices(session, frame.org.id, search, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    context = {
        "frame": frame,
        "nav": "devices",
        "devices": devices,
        "statuses": await _statuses(session, devices),
        "total": total,
        "q": search,
        "page": page,
        "pages": max(1, math.ceil(total / PAGE_SIZE)),
    }
    return render(request, "partials/device_table.html" if is_htmx(request) else "devices.html", context)


@router.post("", summary="Create a device")
async def create(frame: OrgFrame, session: SessionDep, name: Name) -> Response:
    """Register a device, then show its page (where its first token is created)."""
    device = await create_device(session, frame.org.id, name.strip())
    return RedirectResponse(f"{frame.base}/devices/{device.id}", status_code=303)


async def _device_page(
    request: Request, frame: OrgFrame, session: AsyncSession, device: Device, new_token: str | None = None
) -> Response:
    tokens = await list_device_tokens(session, device.id) if frame.can(Operation.ADMINISTER) else []
    context = {
        "frame": frame,
        "nav": "devices",
        "device": device,
        "status": (await _statuses(session, [device])).get(device.id),
        "tokens": tokens,
        "new_token": new_token,
    }
    return render(request, "partials/tokens.html" if is_htmx(request) else "device.html", context)


@router.get("/statuses", summary="Device statuses")
async def statuses(
    frame: OrgFrame,
    session: SessionDep,
    ids: Annotated[list[str], Query(alias="id", max_length=PAGE_SIZE)],
) -> dict[str, list[StatusJson]]:
    """The statuses of the organization's devices named by ``id``, as live events carry them.

    A page reads them once its live stream is subscribed, so that a change between the page being served and the
    stream starting is shown too (``console.js``).
    """
    devices = list(
        await session.scalars(select(Device).where(Device.organization_id == frame.org.id, Device.id.in_(ids)))
    )
    found = await _statuses(session, devices)
    return {"data": [status_json(device.id, found.get(device.id)) for device in devices]}


@router.get("/{device_id}", summary="A device")
async def device_page(request: Request, device_id: str, frame: OrgFrame, session: SessionDep) -> Response:
    """The device: its status, settings and (for administrators) tokens."""
    return await _device_page(request, frame, session, await get_device(session, frame.org.id, device_id))


@router.post("/{device_id}", summary="Change a device")
async def update(
    device_id: str,
    frame: OrgFrame,
    session: SessionDep,
    name: Name,
    enabled: Annotated[bool, Form()] = False,
) -> Response:
    """Rename the device and enable or disable it (disabling disconnects it)."""
    device = await get_device(session, frame.org.id, device_id)
    device.name = name.strip()
    await set_device_enabled(session, device, enabled)
    return RedirectResponse(f"{frame.base}/devices/{device.id}", status_code=303)


@router.post("/{device_id}/delete", summary="Delete a device")
async def delete(device_id: str, frame: OrgFrame, session: SessionDep) -> Response:
    """Delete the device with its tokens and certificates (it is disconnected at once)."""
    await delete_device(session, await get_device(session, frame.org.id, device_id))
    return RedirectResponse(f"{frame.base}/devices", status_code=303)


@router.post("/{device_id}/tokens", summary="Create a device token")
async def create_token(
    request: Request,
    device_id: str,
    frame: OrgFrame,
    session: SessionDep,
    secrets: SecretsDep,
    settings: SettingsDep,
    name: Annotated[str, Form(max_length=200)] = "",
    expires_in_days: Annotated[int | None, Form(ge=1, le=3650)] = None,
) -> Response:
    """A new token for the device; its secret is in this answer only."""
    device = await get_device(session, frame.org.id, device_id)
    lifetime = timedelta(days=expires_in_days or settings.device_token_expiry_days)
    issued = await issue_device_token(session, secrets, device, name=name.strip(), lifetime=lifetime)
    return await _device_page(request, frame, session, device, new_token=issued.token)


@router.post("/{device_id}/tokens/{token_id}/revoke", summary="Revoke a device token")
async def revoke_token(
    request: Request, device_id: str, token_id: str, frame: OrgFrame, session: SessionDep
) -> Response:
    """Revoke the token; connections made with it end at once."""
    device = await get_device(session, frame.org.id, device_id)
    await revoke_device_token(session, device, token_id)
    if is_htmx(request):
        return await _device_page(request, frame, session, device)
    return RedirectResponse(f"{frame.base}/devices/{device.id}", status_code=303)
