"""What one ingest batch writes: readings, alerts, status, command updates and rejected messages.

:class:`TelemetryStore` is the :class:`~mqtthub.telemetry.writer.BatchStore` of the ingest
writer. For each batch it resolves the devices and telemetry definitions it names (through
the cached :class:`~mqtthub.telemetry.directory.Directory`), decides per item whether it
is stored or rejected (and with which MQTT 5.0 reason code), and adds the rows with one
multi-row statement per table. It only flushes; the writer commits. Live events for the
items are prepared here and published by the service after the commit.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from mqtthub.broker.episodes import EpisodeLog
from mqtthub.db.base import new_id
from mqtthub.db.rows import padded
from mqtthub.models import DeviceCommand, DeviceStatus, RejectedMessage, TelemetryAlert
from mqtthub.models.telemetry import CommandStatus
from mqtthub.mqtt.reason_codes import ReasonCode
from mqtthub.telemetry.directory import DefinitionInfo, DeviceInfo, Directory
from mqtthub.telemetry.events import (
    alert_event,
    command_event,
    command_json,
    datastream_event,
    iso_ms,
    status_event,
    status_json,
    telemetry_event,
)
from mqtthub.telemetry.ingest import Ingest, IngestKind, Source
from mqtthub.telemetry.parsing import (
    CommandReply,
    DatastreamReading,
    PayloadError,
    SensorReading,
    StatusReport,
)
from mqtthub.telemetry.schemas import AlertJson, DatastreamJson, SensorJson
from mqtthub.telemetry.thresholds import check_reading, effective_thresholds

logger = logging.getLogger(__name__)
episodes = EpisodeLog()

MAX_LOGGED_PAYLOAD = 2048
LAST_SEEN_PRECISION_MS = 1000
"""``last_seen`` moves at most once a second per device from data messages (status changes always move it)."""
_ALERTS = cast(Table, TelemetryAlert.__table__)
_REJECTED = cast(Table, RejectedMessage.__table__)
_STATUS = cast(Table, DeviceStatus.__table__)


def _moment(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


_VALUE_COLUMNS = ("device_id", "definition_id", "sensor", "value", "raw", "urgent", "source", "ts_ms", "received_ms")


@functools.cache
def _values_sql(dialect: str) -> str:
    # The hottest statement: executed through the driver's executemany, without per-row
    # SQLAlchemy parameter processing (the columns are plain strings, numbers and booleans).
    if dialect == "postgresql":
        marks = ", ".join(f"${n}" for n in range(1, len(_VALUE_COLUMNS) + 1))
    else:
        marks = ", ".join("?" for _ in _VALUE_COLUMNS)
    return f"INSERT INTO telemetry_values ({', '.join(_VALUE_COLUMNS)}) VALUES ({marks})"  # noqa: S608 (constants)


_STATUS_COLUMNS = (
    "device_id",
    "online",
    "status",
    "battery",
    "signal",
    "metadata",
    "last_seen",
    "status_at",
    "connected_at",
    "disconnected_at",
)
_STATUS_KEPT = _STATUS_COLUMNS[3:]
"""Columns a status row leaves as they are when it has no value for them (None)."""
_SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"
"""How SQLAlchemy stores a (UTC) datetime in SQLite, so rows written past it read back the same."""


_SQLITE_STATUS_ROWS = 512
"""Status rows per statement on SQLite (5,120 parameters, far below SQLite's limit of 32,766)."""


@functools.cache
def _status_sql(dialect: str, rows: int = 1) -> str:
    """The status upsert: one row for PostgreSQL's executemany, ``rows`` rows in one statement for SQLite.

    A fleet reconnecting writes a status row per device, and SQLAlchemy's per-row parameter processing cost several
    times what the database does with it, hence plain SQL through the driver. On SQLite the rows also go in one
    statement rather than through executemany, which steps SQLite once per row and hands the interpreter lock to and
    from the event loop around each step: during a connection storm that cost more than the writes themselves.
    """
    if dialect == "postgresql":
        marks = "(" + ", ".join(f"${n}" for n in range(1, len(_STATUS_COLUMNS) + 1)) + ")"
    else:
        marks = ", ".join(["(" + ", ".join("?" for _ in _STATUS_COLUMNS) + ")"] * rows)
    kept = ", ".join(f"{column} = coalesce(excluded.{column}, device_status.{column})" for column in _STATUS_KEPT)
    return (
        f"INSERT INTO device_status ({', '.join(_STATUS_COLUMNS)}) VALUES {marks} "  # noqa: S608 (constants)
        f"ON CONFLICT (device_id) DO UPDATE SET online = excluded.online, status = excluded.status, {kept}"
    )


def _status_params(row: dict[str, Any], dialect: str, texts: dict[datetime, str]) -> tuple[Any, ...]:
    """A status row as the driver takes it: JSON as text, and on SQLite datetimes as SQLAlchemy writes them.

    ``texts`` remembers the datetimes already formatted in this batch (a connect sets ``connected_at`` and
    ``last_seen`` to the same moment, and devices connecting together share milliseconds).
    """
    metadata = row["metadata"]
    moments: tuple[Any, ...] = (row["last_seen"], row["status_at"], row["connected_at"], row["disconnected_at"])
    if dialect != "postgresql":
        moments = tuple(None if moment is None else _sqlite_text(moment, texts) for moment in moments)
    return (
        row["device_id"],
        row["online"],
        row["status"],
        row["battery"],
        row["signal"],
        None if metadata is None else json.dumps(metadata),
        *moments,
    )


def _sqlite_text(moment: datetime, texts: dict[datetime, str]) -> str:
    text = texts.get(moment)
    if text is None:
        text = texts[moment] = moment.strftime(_SQLITE_DATETIME)
    return text


class _Batch:
    """Rows collected while walking one batch."""

    def __init__(self) -> None:
        self.values: list[tuple[Any, ...]] = []
        self.alerts: list[dict[str, Any]] = []
        self.rejected: list[dict[str, Any]] = []
        self.statuses: dict[str, dict[str, Any]] = {}
        self.status_items: dict[str, tuple[Ingest, str]] = {}
        self.seen: dict[str, int] = {}


class TelemetryStore:
    """Writes ingest batches; see the module docstring."""

    def __init__(self, directory: Directory, *, wants_events: Callable[[str], bool] | None = None) -> None:
        self.directory = directory
        self.wants_events = wants_events or (lambda organization_id: True)
        self._statements: dict[str, Any] = {}
        self._last_touch: dict[str, int] = {}

    def _describe(self, item: Ingest, organization_id: str) -> bool:
        """Whether to build the JSON of a stored reading: for an HTTP response or a live listener."""
        return item.source == Source.HTTP or self.wants_events(organization_id)

    async def write(self, session: AsyncSession, items: Sequence[Ingest]) -> list[int]:
        """Add the batch's rows; return one reason code per item (>= 0x80: not stored)."""
        devices = await self.directory.devices(session, {item.device_id for item in items})
        definition_ids = {
            item.body.telemetry_data_id
            for item in items
            if isinstance(item.body, DatastreamReading) and item.device_id in devices
        }
        definitions = await self.directory.definitions(session, definition_ids) if definition_ids else {}
        batch = _Batch()
        codes: list[int] = []
        for item in items:
            item.events = []
            item.rejection = None
            item.stored = None
            device = devices.get(item.device_id)
            code = self._check(item, device)
            if code is None:
                assert device is not None
                code = await self._apply(session, batch, item, device, definitions)
            if item.rejection is not None:
                await self._reject(session, batch, item, device)
            codes.append(code)
        await self._flush(session, batch)
        return codes

    def refuse(self, item: Ingest, reason: str) -> None:
        """Record ``item`` as rejected the next time it is written: the database refused its rows."""
        item.error = PayloadError("payload", f"refused by the database: {reason}")

    # --- per item --------------------------------------------------------------------------------

    def _check(self, item: Ingest, device: DeviceInfo | None) -> int | None:
        """A reason code when the item cannot be applied at all, else None."""
        if item.error is not None:
            item.rejection = item.error
            return ReasonCode.PAYLOAD_FORMAT_INVALID
        if (
            device is None
            or (item.short_id is not None and device.short_id != item.short_id)
            or (item.organization_id is not None and device.organization_id != item.organization_id)
        ):
            if item.from_device:
                item.rejection = PayloadError("device", "no such device in this organization")
            return ReasonCode.NOT_AUTHORIZED
        if not device.enabled and item.from_device:
            item.rejection = PayloadError("device", "the device is disabled")
            return ReasonCode.NOT_AUTHORIZED
        return None

    async def _apply(
        self,
        session: AsyncSession,
        batch: _Batch,
        item: Ingest,
        device: DeviceInfo,
        definitions: dict[int, DefinitionInfo],
    ) -> int:
        body = item.body
        if isinstance(body, DatastreamReading):
            definition = definitions.get(body.telemetry_data_id)
            if definition is None or definition.device_id != device.id:
                item.rejection = PayloadError(
                    "telemetryDataId", f"{body.telemetry_data_id} is not a telemetry definition of this device"
                )
                return ReasonCode.PAYLOAD_FORMAT_INVALID
            self._datastream(batch, item, device, body, definition)
        elif isinstance(body, SensorReading):
            self._sensor(batch, item, device, body)
        elif isinstance(body, StatusReport):
            row = self._status_row(batch, device.id)
            row.update(
                online=body.status != "offline",
                status=body.status,
                status_at=_moment(body.timestamp_ms or item.received_ms),
                last_seen=_moment(item.received_ms),
            )
            if body.metadata:
                row.update(metadata=body.metadata, battery=body.battery, signal=body.signal)
            batch.status_items[device.id] = (item, device.organization_id)
            item.stored = {"deviceId": device.id, "status": body.status}
        elif isinstance(body, CommandReply):
            if not await self._command_reply(session, item, device, body):
                item.rejection = PayloadError("commandId", f"no command {body.command_id!r} for this device")
                return ReasonCode.PAYLOAD_FORMAT_INVALID
        elif item.kind is IngestKind.CONNECTED:
            now = _moment(item.received_ms)
            row = self._status_row(batch, device.id)
            row.update(online=True, status="online", connected_at=now, last_seen=now)
            batch.status_items[device.id] = (item, device.organization_id)
        elif item.kind is IngestKind.DISCONNECTED:
            now = _moment(item.received_ms)
            row = self._status_row(batch, device.id)
            row.update(online=False, status="offline", disconnected_at=now, last_seen=now)
            batch.status_items[device.id] = (item, device.organization_id)
        elif item.kind is IngestKind.COMMAND_DELIVERED:
            await self._command_delivered(session, item, device)
        if item.from_device:
            batch.seen[device.id] = item.received_ms
        return ReasonCode.SUCCESS

    def _datastream(
        self, batch: _Batch, item: Ingest, device: DeviceInfo, body: DatastreamReading, definition: DefinitionInfo
    ) -> None:
        ts_ms = body.timestamp_ms or item.received_ms
        batch.values.append(
            (
                device.id,
                definition.id,
                definition.key,
                body.value,
                body.raw,
                body.urgent,
                item.source,
                ts_ms,
                item.received_ms,
            )
        )
        if self._describe(item, device.organization_id):
            self._datastream_data(item, device, body, definition, ts_ms)
        self._thresholds(batch, item, device, body, definition)

    @staticmethod
    def _datastream_data(
        item: Ingest, device: DeviceInfo, body: DatastreamReading, definition: DefinitionInfo, ts_ms: int
    ) -> None:
        data: DatastreamJson = {
            "deviceId": device.id,
            "telemetryDataId": definition.id,
            "key": definition.key,
            "unit": definition.unit,
            "value": body.value if body.value is not None else body.raw,
            "rawValue": body.raw,
            "urgent": body.urgent,
            "timestamp": iso_ms(ts_ms),
            "receivedAt": iso_ms(item.received_ms),
            "source": item.source,
        }
        item.stored = data
        item.events.append(datastream_event(device.organization_id, data))

    @staticmethod
    def _thresholds(
        batch: _Batch, item: Ingest, device: DeviceInfo, body: DatastreamReading, definition: DefinitionInfo
    ) -> None:
        low, high = effective_thresholds(
            body.threshold_min, body.threshold_max, definition.min_threshold, definition.max_threshold
        )
        kind = check_reading(body.value, urgent=body.urgent, low=low, high=high)
        if kind is None:
            return
        alert = {
            "id": new_id(),
            "organization_id": device.organization_id,
            "device_id": device.id,
            "definition_id": definition.id,
            "sensor": definition.key,
            "kind": kind.value,
            "value": body.value,
            "raw": body.raw,
            "min_threshold": low,
            "max_threshold": high,
            "created_at": _moment(item.received_ms),
        }
        batch.alerts.append(alert)
        item.events.append(alert_event(device.organization_id, alert_json(alert)))

    def _sensor(self, batch: _Batch, item: Ingest, device: DeviceInfo, body: SensorReading) -> None:
        ts_ms = body.timestamp_ms or item.received_ms
        batch.values.append(
            (device.id, None, body.sensor, body.value, body.raw, False, item.source, ts_ms, item.received_ms)
        )
        if not self._describe(item, device.organization_id):
            return
        data: SensorJson = {
            "deviceId": device.id,
            "sensor": body.sensor,
            "value": body.value,
            "payload": json.loads(body.raw),
            "timestamp": iso_ms(ts_ms),
            "source": item.source,
        }
        item.stored = data
        item.events.append(telemetry_event(device.organization_id, data))

    @staticmethod
    def _status_row(batch: _Batch, device_id: str) -> dict[str, Any]:
        row = batch.statuses.get(device_id)
        if row is None:
            row = batch.statuses[device_id] = {
                "device_id": device_id,
                "online": False,
                "status": "unknown",
                "battery": None,
                "signal": None,
                "metadata": None,
                "last_seen": None,
                "status_at": None,
                "connected_at": None,
                "disconnected_at": None,
            }
        return row

    async def _command_reply(self, session: AsyncSession, item: Ingest, device: DeviceInfo, body: CommandReply) -> bool:
        command = await session.get(DeviceCommand, body.command_id)
        if command is None or command.device_id != device.id:
            return False
        command.status = body.status
        command.result = body.result
        command.error = body.error
        command.completed_at = _moment(item.received_ms)
        if command.delivered_at is None:
            command.delivered_at = command.completed_at
        data = command_json(command)
        item.stored = data
        item.events.append(command_event(device.organization_id, data))
        return True

    async def _command_delivered(self, session: AsyncSession, item: Ingest, device: DeviceInfo) -> None:
        command = await session.get(DeviceCommand, item.command_id) if item.command_id else None
        if command is None or command.device_id != device.id or command.status != CommandStatus.PENDING:
            return
        command.status = CommandStatus.DELIVERED.value
        command.delivered_at = _moment(item.received_ms)
        item.events.append(command_event(device.organization_id, command_json(command)))

    async def _reject(self, session: AsyncSession, batch: _Batch, item: Ingest, device: DeviceInfo | None) -> None:
        rejection = item.rejection
        assert rejection is not None
        organization_id = device.organization_id if device is not None else item.organization_id
        if organization_id is None and item.short_id is not None:
            organization_id = await self.directory.organization_by_short_id(session, item.short_id)
        payload = item.payload[:MAX_LOGGED_PAYLOAD].decode("utf-8", errors="replace")
        batch.rejected.append(
            {
                "organization_id": organization_id,
                "device_id": item.device_id[:200],
                "source": item.source,
                "topic": item.topic[:1024],
                "field": rejection.field[:100],
                "reason": rejection.reason[:500],
                "payload": payload,
                "received_at": _moment(item.received_ms),
            }
        )
        episodes(
            logger,
            logging.INFO,
            ("rejected", item.device_id),
            "rejected %s from device %s: %s",
            item.kind.value,
            item.device_id,
            rejection,
        )

    # --- per batch -------------------------------------------------------------------------------

    async def _flush(self, session: AsyncSession, batch: _Batch) -> None:
        dialect = session.get_bind().dialect.name
        if batch.values:
            connection = await session.connection()
            if dialect == "postgresql":
                # COPY inside the batch's transaction: several times faster than a multi-row INSERT.
                raw = await connection.get_raw_connection()
                driver: Any = raw.driver_connection
                await driver.copy_records_to_table("telemetry_values", records=batch.values, columns=_VALUE_COLUMNS)
            else:
                await connection.exec_driver_sql(_values_sql(dialect), batch.values)
        if batch.alerts:
            await session.execute(insert(_ALERTS), batch.alerts)
        if batch.rejected:
            await session.execute(insert(_REJECTED), batch.rejected)
        if batch.statuses:
            await self._upsert_status(session, dialect, batch)
        touched = self._touched_rows(batch)
        if touched:
            await session.execute(self._touch_statement(dialect), touched)
        await session.flush()

    def _touched_rows(self, batch: _Batch) -> list[dict[str, Any]]:
        """``last_seen`` updates for devices that sent data, at most one per device and second."""
        rows = []
        last = self._last_touch
        if len(last) > self.directory.max_entries:
            last.clear()
        for device_id, moment in batch.seen.items():
            if device_id in batch.statuses or moment - last.get(device_id, 0) < LAST_SEEN_PRECISION_MS:
                continue
            last[device_id] = moment
            rows.append({"device_id": device_id, "online": True, "status": "online", "last_seen": _moment(moment)})
        return rows

    def _touch_statement(self, dialect: str) -> Any:
        """The ``last_seen`` upsert, built once per dialect (building one costs more than running it)."""
        statement = self._statements.get(dialect)
        if statement is not None:
            return statement
        stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_STATUS)
        statement = stmt.on_conflict_do_update(
            index_elements=["device_id"], set_={"last_seen": stmt.excluded.last_seen}
        )
        self._statements[dialect] = statement
        return statement

    async def _upsert_status(self, session: AsyncSession, dialect: str, batch: _Batch) -> None:
        for device_id, values in batch.statuses.items():
            if values["last_seen"] is not None:
                self._last_touch[device_id] = int(values["last_seen"].timestamp() * 1000)
        texts: dict[datetime, str] = {}
        params = [_status_params(values, dialect, texts) for values in batch.statuses.values()]
        connection = await session.connection()
        if dialect == "postgresql":
            await connection.exec_driver_sql(_status_sql(dialect), params)
        else:
            for start in range(0, len(params), _SQLITE_STATUS_ROWS):
                # Writing the last row again leaves what writing it once does.
                chunk = padded(params[start : start + _SQLITE_STATUS_ROWS])
                flat = tuple(value for row in chunk for value in row)
                await connection.exec_driver_sql(_status_sql(dialect, len(chunk)), flat)
        # The rows are read back only to describe them to live listeners: a fleet reconnecting to a hub nobody
        # watches costs one upsert per batch, not a query and an ORM object per device as well.
        described = [
            device_id
            for device_id, (_item, organization_id) in batch.status_items.items()
            if self.wants_events(organization_id)
        ]
        if not described:
            return
        rows = await session.scalars(
            select(DeviceStatus).where(DeviceStatus.device_id.in_(described)).execution_options(populate_existing=True)
        )
        for row in rows:
            item, organization_id = batch.status_items[row.device_id]
            item.events.append(status_event(organization_id, status_json(row.device_id, row)))


def alert_json(alert: dict[str, Any] | TelemetryAlert) -> AlertJson:
    """An alert as the API and live events show it, from a row or the dict it was inserted from."""
    get: Callable[[str], Any] = alert.get if isinstance(alert, dict) else lambda name: getattr(alert, name)
    created = cast(datetime, get("created_at"))
    return {
        "id": get("id"),
        "deviceId": get("device_id"),
        "telemetryDataId": get("definition_id"),
        "sensor": get("sensor"),
        "kind": get("kind"),
        "value": get("value"),
        "rawValue": get("raw"),
        "min": get("min_threshold"),
        "max": get("max_threshold"),
        "createdAt": created.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
