"""Telemetry endpoints under ``/api/v1``.

Device endpoints (device token, the same validation and storage as MQTT):

- ``POST /devices/{id}/datastream``, ``POST /devices/{id}/status``,
  ``POST /devices/{id}/telemetry/{sensor}``, ``POST /devices/{id}/commands/reply``

User endpoints (session token; the device's organization):

- ``GET /devices/{id}/status``
- ``GET /devices/{id}/datastreams`` and ``GET /devices/{id}/datastreams/{sensor}``: ``from``, ``to``,
  ``limit``, ``offset``, ``telemetryDataId``, ``bucket`` (aggregates per time bucket)
- ``GET|POST /devices/{id}/telemetry-definitions``, ``GET|PATCH|DELETE …/{definition_id}``
- ``GET /devices/{id}/alerts``, ``GET /organizations/{org_id}/alerts``
- ``GET /organizations/{org_id}/rejected-messages``
- ``POST|GET /devices/{id}/commands``, ``GET /devices/{id}/commands/{command_id}``, ``GET /commands/{command_id}``
- ``POST /organizations/{org_id}/broadcast``
- ``GET /telemetry/stats`` (platform administrators)
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import APIRouter, Depends, Query, Request, Response

from mqtthub.auth.deps import CurrentUser, require_org_access
from mqtthub.auth.organizations import get_organization
from mqtthub.crypto import SecretBox
from mqtthub.errors import NotFoundError, PermissionDeniedError, ValidationFailedError
from mqtthub.models import DeviceCommand, DeviceStatus
from mqtthub.telemetry import definitions
from mqtthub.telemetry.access import authenticate_device, bearer_token, body_token, can_see, device_for_user
from mqtthub.telemetry.commands import CommandService, device_commands
from mqtthub.telemetry.events import command_json, iso, status_json
from mqtthub.telemetry.history import HistoryQuery, aggregates, parse_bucket, readings
from mqtthub.telemetry.parsing import PayloadError, parse_timestamp
from mqtthub.telemetry.records import alerts, rejected_messages
from mqtthub.telemetry.routing import Route
from mqtthub.telemetry.schemas import (
    AggregateJson,
    AlertJson,
    BroadcastCreate,
    BroadcastJson,
    CommandCreate,
    CommandJson,
    DatastreamJson,
    DefinitionCreate,
    DefinitionJson,
    DefinitionUpdate,
    DeviceStatusJson,
    Ok,
    Page,
    Pagination,
    ReadingJson,
    RejectedJson,
    SensorJson,
    StatusAck,
    StoredJson,
    TelemetryStats,
    definition_json,
)
from mqtthub.telemetry.service import TelemetryService
from mqtthub.telemetry.store import alert_json
from mqtthub.web.deps import SecretsDep, SessionDep
from mqtthub.web.limits import BodySize, body_size
from mqtthub.web.openapi import errors
from mqtthub.web.params import MAX_ID, IntId, Limit, Offset
from mqtthub.web.state import provide

router = APIRouter(prefix="/api/v1", tags=["telemetry"])


TelemetryDep = Annotated[TelemetryService, Depends(provide(TelemetryService))]
CommandsDep = Annotated[CommandService, Depends(provide(CommandService))]


def _time(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    try:
        return parse_timestamp(float(value) if value.replace(".", "", 1).isdigit() else value, name)
    except PayloadError as exc:
        raise ValidationFailedError(f"{name} {exc.reason}", field=name) from None


# --- device messages over HTTP ---------------------------------------------------------------------


async def _ingest(
    request: Request,
    service: TelemetryService,
    secrets: SecretBox,
    device_id: str,
    route: Route,
    sensor: str | None = None,
) -> StoredJson:
    payload = await request.body()
    token = bearer_token(request.headers.get("authorization")) or body_token(payload)
    caller = await authenticate_device(service.database, secrets, device_id, token)
    return await service.ingest_http(route, caller.device_id, caller.organization_id, payload, sensor=sensor)


_DEVICE_ERRORS = errors(401, 403, 503)
_DEVICE_BODY = {"requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}, "required": True}}


@router.post("/devices/{device_id}/datastream", status_code=201, openapi_extra=_DEVICE_BODY, responses=_DEVICE_ERRORS)
@body_size(BodySize.MESSAGE)
async def post_datastream(
    device_id: str, request: Request, service: TelemetryDep, secrets: SecretsDep
) -> Ok[DatastreamJson]:
    """A datastream value from a device (document 001's datastream message)."""
    return Ok(data=cast(DatastreamJson, await _ingest(request, service, secrets, device_id, Route.DATASTREAM)))


@router.post("/devices/{device_id}/status", status_code=201, openapi_extra=_DEVICE_BODY, responses=_DEVICE_ERRORS)
@body_size(BodySize.MESSAGE)
async def post_status(device_id: str, request: Request, service: TelemetryDep, secrets: SecretsDep) -> Ok[StatusAck]:
    """A status message from a device (document 001's status message)."""
    return Ok(data=cast(StatusAck, await _ingest(request, service, secrets, device_id, Route.STATUS)))


@router.post(
    "/devices/{device_id}/telemetry/{sensor:path}",
    status_code=201,
    openapi_extra=_DEVICE_BODY,
    responses=_DEVICE_ERRORS,
)
@body_size(BodySize.MESSAGE)
async def post_sensor(
    device_id: str, sensor: str, request: Request, service: TelemetryDep, secrets: SecretsDep
) -> Ok[SensorJson]:
    """A sensor reading (a JSON object or a bare number), as on ``device/{id}/telemetry/{sensor}``."""
    return Ok(data=cast(SensorJson, await _ingest(request, service, secrets, device_id, Route.TELEMETRY, sensor)))


@router.post(
    "/devices/{device_id}/commands/reply", status_code=201, openapi_extra=_DEVICE_BODY, responses=_DEVICE_ERRORS
)
@body_size(BodySize.MESSAGE)
async def post_command_reply(
    device_id: str, request: Request, service: TelemetryDep, secrets: SecretsDep
) -> Ok[CommandJson]:
    """A device reporting how a command ended: ``{commandId, status: completed|failed, result?, error?}``."""
    return Ok(data=cast(CommandJson, await _ingest(request, service, secrets, device_id, Route.COMMAND_REPLY)))


# --- status and history ----------------------------------------------------------------------------


@router.get("/devices/{device_id}/status")
async def get_status(
    device_id: str, user: CurrentUser, session: SessionDep, service: TelemetryDep
) -> Ok[DeviceStatusJson]:
    """The device's status: online, status, last seen, battery, signal, metadata."""
    await device_for_user(session, user, device_id)
    row = await session.get(DeviceStatus, device_id)
    data = DeviceStatusJson(**status_json(device_id, row), connected=service.observer.online(device_id))
    return Ok(data=data)


async def _history(
    session: SessionDep,
    user: CurrentUser,
    device_id: str,
    sensor: str | None,
    start: str | None,
    end: str | None,
    limit: int,
    offset: int,
    telemetry_data_id: int | None,
    bucket: str | None,
) -> Page[ReadingJson] | Page[AggregateJson]:
    await device_for_user(session, user, device_id)
    query = HistoryQuery(
        device_id,
        sensor=sensor,
        definition_id=telemetry_data_id,
        start_ms=_time(start, "from"),
        end_ms=_time(end, "to"),
        limit=limit,
        offset=offset,
    )
    pagination: Pagination = {"limit": limit, "offset": offset, "hasMore": False}
    if bucket is not None:
        buckets, pagination["hasMore"] = await aggregates(session, query, parse_bucket(bucket))
        return Page(data=buckets, pagination=pagination)
    values, pagination["hasMore"] = await readings(session, query)
    return Page(data=values, pagination=pagination)


@router.get("/devices/{device_id}/datastreams")
async def list_datastreams(
    device_id: str,
    user: CurrentUser,
    session: SessionDep,
    start: Annotated[str | None, Query(alias="from", description="ISO 8601 or Unix time")] = None,
    end: Annotated[str | None, Query(alias="to", description="ISO 8601 or Unix time")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
    telemetry_data_id: Annotated[int | None, Query(alias="telemetryDataId", ge=1, le=MAX_ID)] = None,
    bucket: Annotated[str | None, Query(description="Aggregate per bucket: 30s, 5m, 1h, 1d")] = None,
) -> Page[ReadingJson] | Page[AggregateJson]:
    """The device's readings, newest first, or per-bucket min/max/avg/count with ``bucket``."""
    return await _history(session, user, device_id, None, start, end, limit, offset, telemetry_data_id, bucket)


@router.get("/devices/{device_id}/datastreams/{sensor:path}")
async def list_sensor_datastream(
    device_id: str,
    sensor: str,
    user: CurrentUser,
    session: SessionDep,
    start: Annotated[str | None, Query(alias="from")] = None,
    end: Annotated[str | None, Query(alias="to")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
    bucket: Annotated[str | None, Query()] = None,
) -> Page[ReadingJson] | Page[AggregateJson]:
    """One sensor's readings (the definition's ``key`` or the telemetry topic's sensor name)."""
    return await _history(session, user, device_id, sensor, start, end, limit, offset, None, bucket)


# --- telemetry definitions -------------------------------------------------------------------------


@router.post("/devices/{device_id}/telemetry-definitions", status_code=201, responses=errors(409))
async def create_definition(
    device_id: str, body: DefinitionCreate, user: CurrentUser, session: SessionDep
) -> Ok[DefinitionJson]:
    """A new telemetry definition; its ``id`` is the ``telemetryDataId`` the device sends."""
    device = await device_for_user(session, user, device_id, admin=True)
    return Ok(data=definition_json(await definitions.create_definition(session, device, body)))


@router.get("/devices/{device_id}/telemetry-definitions")
async def list_definitions(device_id: str, user: CurrentUser, session: SessionDep) -> Ok[list[DefinitionJson]]:
    """The device's telemetry definitions."""
    await device_for_user(session, user, device_id)
    return Ok(data=[definition_json(row) for row in await definitions.device_definitions(session, device_id)])


@router.get("/devices/{device_id}/telemetry-definitions/{definition_id}")
async def get_definition(
    device_id: str, definition_id: IntId, user: CurrentUser, session: SessionDep
) -> Ok[DefinitionJson]:
    """One telemetry definition."""
    await device_for_user(session, user, device_id)
    return Ok(data=definition_json(await definitions.get_definition(session, device_id, definition_id)))


@router.patch("/devices/{device_id}/telemetry-definitions/{definition_id}")
async def update_definition(
    device_id: str,
    definition_id: IntId,
    body: DefinitionUpdate,
    user: CurrentUser,
    session: SessionDep,
) -> Ok[DefinitionJson]:
    """Change name, unit or default thresholds (effective for the next message)."""
    await device_for_user(session, user, device_id, admin=True)
    definition = await definitions.get_definition(session, device_id, definition_id)
    await definitions.update_definition(session, definition, body.model_dump(exclude_unset=True))
    return Ok(data=definition_json(definition))


@router.delete("/devices/{device_id}/telemetry-definitions/{definition_id}", status_code=204)
async def delete_definition(device_id: str, definition_id: IntId, user: CurrentUser, session: SessionDep) -> Response:
    """Remove a definition; stored readings stay (``telemetryDataId`` kept in history)."""
    await device_for_user(session, user, device_id, admin=True)
    await definitions.delete_definition(session, await definitions.get_definition(session, device_id, definition_id))
    return Response(status_code=204)


# --- alerts and rejected messages ------------------------------------------------------------------


@router.get("/devices/{device_id}/alerts")
async def list_device_alerts(
    device_id: str, user: CurrentUser, session: SessionDep, limit: Limit = 100, offset: Offset = 0
) -> Page[AlertJson]:
    """The device's alerts, newest first."""
    device = await device_for_user(session, user, device_id)
    rows = await alerts(session, device.organization_id, device_id=device.id, limit=limit + 1, offset=offset)
    return Page.of([alert_json(row) for row in rows], limit, offset)


@router.get("/organizations/{org_id}/alerts")
async def list_alerts(
    org_id: str,
    user: CurrentUser,
    session: SessionDep,
    device_id: Annotated[str | None, Query(alias="deviceId")] = None,
    kind: Annotated[str | None, Query(description="urgent, below_min or above_max")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[AlertJson]:
    """The organization's alerts, newest first."""
    require_org_access(user, org_id)
    rows = await alerts(session, org_id, device_id=device_id, kind=kind, limit=limit + 1, offset=offset)
    return Page.of([alert_json(row) for row in rows], limit, offset)


@router.get("/organizations/{org_id}/rejected-messages")
async def list_rejected(
    org_id: str,
    user: CurrentUser,
    session: SessionDep,
    device_id: Annotated[str | None, Query(alias="deviceId")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[RejectedJson]:
    """Device messages that were not stored, with the field and the reason, newest first."""
    require_org_access(user, org_id)
    rows = await rejected_messages(session, org_id, device_id=device_id, limit=limit + 1, offset=offset)
    data: list[RejectedJson] = [
        {
            "id": row.id,
            "deviceId": row.device_id,
            "source": row.source,
            "topic": row.topic,
            "field": row.field,
            "reason": row.reason,
            "payload": row.payload,
            "receivedAt": iso(row.received_at),
        }
        for row in rows
    ]
    return Page.of(data, limit, offset)


# --- commands and broadcasts -----------------------------------------------------------------------


@router.post("/devices/{device_id}/commands", status_code=201, responses=errors(503))
@body_size(BodySize.MESSAGE)
async def send_command(
    device_id: str, body: CommandCreate, user: CurrentUser, session: SessionDep, commands: CommandsDep
) -> Ok[CommandJson]:
    """Publish a command QoS 1 to ``devices/{id}/commands``; its status starts ``pending``.

    The device receives ``{commandId, command, parameters, timestamp}``. The status becomes
    ``delivered`` when the device acknowledges the PUBLISH (a device with a persistent session
    gets it when it reconnects), then ``completed`` or ``failed`` when the device publishes
    ``{commandId, status, result?, error?}`` to ``devices/{id}/commands/reply``.
    """
    device = await device_for_user(session, user, device_id)
    if not device.enabled:
        raise PermissionDeniedError("the device is disabled")
    data = await commands.send_command(
        device_id=device.id,
        organization_id=device.organization_id,
        command=body.command,
        parameters=body.parameters,
        created_by=user.id,
    )
    return Ok(data=data)


@router.get("/devices/{device_id}/commands")
async def list_commands(
    device_id: str,
    user: CurrentUser,
    session: SessionDep,
    status: Annotated[str | None, Query(description="pending, delivered, completed or failed")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[CommandJson]:
    """The device's commands, newest first."""
    await device_for_user(session, user, device_id)
    rows = await device_commands(session, device_id, status=status, limit=limit + 1, offset=offset)
    return Page.of([command_json(row) for row in rows], limit, offset)


async def _command(session: SessionDep, user: CurrentUser, command_id: str) -> DeviceCommand:
    command = await session.get(DeviceCommand, command_id)
    if command is None or not can_see(user, command.organization_id):
        raise NotFoundError(f"command {command_id} not found")
    return command


@router.get("/devices/{device_id}/commands/{command_id}")
async def get_device_command(
    device_id: str, command_id: str, user: CurrentUser, session: SessionDep
) -> Ok[CommandJson]:
    """One command of the device and its status."""
    command = await _command(session, user, command_id)
    if command.device_id != device_id:
        raise NotFoundError(f"command {command_id} not found")
    return Ok(data=command_json(command))


@router.get("/commands/{command_id}")
async def get_command(command_id: str, user: CurrentUser, session: SessionDep) -> Ok[CommandJson]:
    """One command and its status."""
    return Ok(data=command_json(await _command(session, user, command_id)))


@router.post("/organizations/{org_id}/broadcast", status_code=202, responses=errors(503))
@body_size(BodySize.MESSAGE)
async def broadcast(
    org_id: str, body: BroadcastCreate, user: CurrentUser, session: SessionDep, commands: CommandsDep
) -> Ok[BroadcastJson]:
    """Publish to ``organizations/{org_id}/broadcast``, which every device of the organization may subscribe to.

    Devices receive ``{broadcastId, organizationId, message, timestamp}``.
    """
    require_org_access(user, org_id, admin=True)
    await get_organization(session, org_id)
    return Ok(data=await commands.broadcast(org_id, body.message, qos=body.qos))


@router.get("/telemetry/stats")
async def telemetry_stats(user: CurrentUser, service: TelemetryDep) -> Ok[TelemetryStats]:
    """Ingestion counters of this hub (platform administrators)."""
    if not user.is_platform_admin:
        raise PermissionDeniedError("telemetry statistics are for platform administrators")
    return Ok(data=service.stats())
