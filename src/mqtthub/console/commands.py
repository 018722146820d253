"""A device's commands on its page: send one, and follow it from pending to delivered to completed or failed.

Sending calls the same :class:`~mqtthub.telemetry.commands.CommandService` as ``POST …/devices/{id}/commands``
after the same role gate (``COMMAND``: administrators). The list is a partial the device page loads with htmx
and polls every two seconds while a command is still in flight, so a status change shows without a reload
and an idle page makes no requests.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from mqtthub.auth.devices import get_device
from mqtthub.console.routing import ConsoleRoute
from mqtthub.console.session import PREFIX
from mqtthub.console.templating import OrgFrame, is_htmx, render
from mqtthub.errors import PermissionDeniedError, ValidationFailedError
from mqtthub.models import Device
from mqtthub.models.telemetry import CommandStatus
from mqtthub.telemetry.commands import device_commands
from mqtthub.telemetry.endpoints import CommandsDep
from mqtthub.web.deps import SessionDep
from mqtthub.web.limits import BodySize, body_size

SHOWN = 20
"""Commands listed on the device page (the newest)."""
IN_FLIGHT = frozenset({CommandStatus.PENDING.value, CommandStatus.DELIVERED.value})

router = APIRouter(
    prefix=PREFIX + "/orgs/{org_id}/devices/{device_id}/commands",
    route_class=ConsoleRoute,
    include_in_schema=False,
)


def _parameters(text: str) -> dict[str, Any]:
    """The parameters field: empty, or a JSON object."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationFailedError(
            f"parameters: not JSON ({exc.msg} at character {exc.pos})", field="parameters"
        ) from None
    if not isinstance(value, dict):
        raise ValidationFailedError('parameters: a JSON object is needed, e.g. {"level": 3}', field="parameters")
    return value


async def _list(request: Request, frame: OrgFrame, session: SessionDep, device: Device) -> Response:
    commands = await device_commands(session, device.id, limit=SHOWN)
    context = {
        "frame": frame,
        "device": device,
        "commands": commands,
        "polling": any(command.status in IN_FLIGHT for command in commands),
    }
    return render(request, "partials/command_list.html", context)


@router.get("", summary="A device's commands")
async def list_part(request: Request, device_id: str, frame: OrgFrame, session: SessionDep) -> Response:
    """The newest commands of the device and their status (the part of its page htmx loads and polls)."""
    return await _list(request, frame, session, await get_device(session, frame.org.id, device_id))


@router.post("", summary="Send a device command")
@body_size(BodySize.MESSAGE)
async def send(
    request: Request,
    device_id: str,
    frame: OrgFrame,
    session: SessionDep,
    commands: CommandsDep,
    command: Annotated[str, Form(min_length=1, max_length=100)],
    parameters: Annotated[str, Form()] = "",
) -> Response:
    """Publish a command to the device QoS 1; htmx gets the list, a plain form goes back to the device page."""
    device = await get_device(session, frame.org.id, device_id)
    if not device.enabled:
        raise PermissionDeniedError("the device is disabled")
    await commands.send_command(
        device_id=device.id,
        organization_id=device.organization_id,
        command=command.strip(),
        parameters=_parameters(parameters),
        created_by=frame.console.user.id,
    )
    if is_htmx(request):
        return await _list(request, frame, session, device)
    return RedirectResponse(f"{frame.base}/devices/{device.id}#commands", status_code=303)
