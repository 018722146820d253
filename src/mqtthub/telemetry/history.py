"""Reading history: newest-first pages and per-bucket aggregates that run alike on SQLite and PostgreSQL.

Buckets are computed on the integer ``ts_ms`` column as ``ts_ms - ts_ms % bucket_ms``:
plain integer arithmetic both databases evaluate identically (no ``date_trunc`` or
``strftime``), and the result is the bucket's start in Unix milliseconds.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, and_, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from mqtthub.errors import ValidationFailedError
from mqtthub.models import TelemetryValue
from mqtthub.telemetry.events import iso_ms
from mqtthub.telemetry.schemas import AggregateJson, ReadingJson

_BUCKET = re.compile(r"^(\d+)([smhd]?)$")
_UNIT_MS = {"": 1000, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
MIN_BUCKET_MS = 1000
MAX_BUCKET_MS = 366 * 86_400_000


def parse_bucket(text: str) -> int:
    """Milliseconds in a bucket written as ``30s``, ``5m``, ``1h``, ``1d`` or plain seconds.

    Raises:
        ValidationFailedError: not a duration between one second and a year.
    """
    match = _BUCKET.match(text.strip())
    if match is None:
        raise ValidationFailedError("bucket must look like 30s, 5m, 1h or 1d", field="bucket")
    milliseconds = int(match[1]) * _UNIT_MS[match[2]]
    if not MIN_BUCKET_MS <= milliseconds <= MAX_BUCKET_MS:
        raise ValidationFailedError("bucket must be between 1s and 366d", field="bucket")
    return milliseconds


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """Which readings of one device: sensor key or definition, time range (Unix ms, inclusive), page."""

    device_id: str
    sensor: str | None = None
    definition_id: int | None = None
    start_ms: int | None = None
    end_ms: int | None = None
    limit: int = 100
    offset: int = 0

    def conditions(self) -> ColumnElement[bool]:
        """The WHERE clause."""
        clauses: list[ColumnElement[bool]] = [TelemetryValue.device_id == self.device_id]
        if self.sensor is not None:
            clauses.append(TelemetryValue.sensor == self.sensor)
        if self.definition_id is not None:
            clauses.append(TelemetryValue.definition_id == self.definition_id)
        if self.start_ms is not None:
            clauses.append(TelemetryValue.ts_ms >= self.start_ms)
        if self.end_ms is not None:
            clauses.append(TelemetryValue.ts_ms <= self.end_ms)
        return and_(*clauses)


def reading_json(row: TelemetryValue) -> ReadingJson:
    """A stored reading as the history endpoints show it."""
    data: ReadingJson = {
        "id": row.id,
        "deviceId": row.device_id,
        "sensor": row.sensor,
        "telemetryDataId": row.definition_id,
        "value": row.value if row.value is not None else row.raw,
        "rawValue": row.raw,
        "urgent": row.urgent,
        "source": row.source,
        "timestamp": iso_ms(row.ts_ms),
        "receivedAt": iso_ms(row.received_ms),
    }
    if row.definition_id is None:
        data["payload"] = json.loads(row.raw)
    return data


async def readings(session: AsyncSession, query: HistoryQuery) -> tuple[list[ReadingJson], bool]:
    """A page of readings, newest first, and whether more follow."""
    statement: Select[tuple[TelemetryValue]] = (
        select(TelemetryValue)
        .where(query.conditions())
        .order_by(TelemetryValue.ts_ms.desc(), TelemetryValue.id.desc())
        .limit(query.limit + 1)
        .offset(query.offset)
    )
    rows = list(await session.scalars(statement))
    return [reading_json(row) for row in rows[: query.limit]], len(rows) > query.limit


async def aggregates(session: AsyncSession, query: HistoryQuery, bucket_ms: int) -> tuple[list[AggregateJson], bool]:
    """Per bucket and sensor: min, max, avg and count of numeric values, newest bucket first."""
    bucket = (TelemetryValue.ts_ms - TelemetryValue.ts_ms % literal(bucket_ms)).label("bucket")
    statement = (
        select(
            bucket,
            TelemetryValue.sensor,
            func.min(TelemetryValue.value),
            func.max(TelemetryValue.value),
            func.avg(TelemetryValue.value),
            func.count(TelemetryValue.value),
            func.count(),
        )
        .where(query.conditions())
        .group_by(bucket, TelemetryValue.sensor)
        .order_by(bucket.desc(), TelemetryValue.sensor)
        .limit(query.limit + 1)
        .offset(query.offset)
    )
    rows = list(await session.execute(statement))
    result: list[AggregateJson] = [
        {
            "bucket": iso_ms(int(start)),
            "bucketMs": bucket_ms,
            "sensor": sensor,
            "min": low,
            "max": high,
            "avg": float(mean) if mean is not None else None,
            "count": int(numeric),
            "readings": int(total),
        }
        for start, sensor, low, high, mean, numeric, total in rows[: query.limit]
    ]
    return result, len(rows) > query.limit


async def sensors(session: AsyncSession, device_id: str, limit: int) -> list[str]:
    """The names of the sensors the device has readings of, in order, at most ``limit``.

    Read as a loose index scan of ``(device_id, sensor, ts_ms)``: a recursive query that seeks the next name
    after the previous one, so it costs one index seek per sensor however many readings each has (a plain
    ``DISTINCT`` reads every reading of the device). Both SQLite and PostgreSQL run it as written.
    """
    of_device = TelemetryValue.device_id == device_id
    names = select(func.min(TelemetryValue.sensor).label("sensor")).where(of_device).cte("names", recursive=True)
    following = select(func.min(TelemetryValue.sensor)).where(of_device, TelemetryValue.sensor > names.c.sensor)
    names = names.union_all(select(following.scalar_subquery()).where(names.c.sensor.is_not(None)))
    rows = await session.scalars(select(names.c.sensor).where(names.c.sensor.is_not(None)).limit(limit))
    return [name for name in rows if name is not None]
