"""The sensor charts of a device page: each sensor's readings over a time range, with its thresholds.

``console.js`` asks :func:`chart_data` for the range the user picked (the last hour, day, week or month, or
from/to) and draws one uPlot chart per sensor, then appends readings as ``WS /api/v1/stream`` brings them.
The readings are read with the API's history functions (:mod:`mqtthub.telemetry.history`): up to
:data:`MAX_POINTS` readings as they are, or, when the range holds more, per-bucket minimum, average and
maximum with buckets sized so that the chart has at most that many points. A week of a busy device therefore
costs one aggregate query, not a transfer of every reading. Thresholds are the definitions' defaults (a
message may carry its own; alerts show those).
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy.ext.asyncio import AsyncSession

from mqtthub.auth.devices import get_device
from mqtthub.console.routing import ConsoleRoute
from mqtthub.console.session import PREFIX
from mqtthub.console.templating import OrgFrame
from mqtthub.errors import ValidationFailedError
from mqtthub.models import TelemetryDefinition
from mqtthub.telemetry.definitions import device_definitions
from mqtthub.telemetry.history import MAX_BUCKET_MS, MIN_BUCKET_MS, HistoryQuery, aggregates, readings, sensors
from mqtthub.web.deps import SessionDep

RANGES_MS = {"1h": 3_600_000, "24h": 86_400_000, "7d": 7 * 86_400_000, "30d": 30 * 86_400_000}
"""The ranges the page offers, ending now; ``custom`` takes ``from`` and ``to`` instead."""
MAX_POINTS = 500
"""Most points a chart gets: readings as they are up to this many, per-bucket aggregates beyond."""
MAX_SENSORS = 20
"""Most sensors charted on one page (definitions first, then other sensor names in order)."""
MAX_SPAN_MS = MAX_BUCKET_MS
"""The longest custom range."""

router = APIRouter(
    prefix=PREFIX + "/orgs/{org_id}/devices/{device_id}", route_class=ConsoleRoute, include_in_schema=False
)

Millis = Annotated[int | None, Query(ge=0, le=2**53)]


def _span(choice: str, start: int | None, end: int | None, now_ms: int) -> tuple[int, int]:
    if choice in RANGES_MS:
        return now_ms - RANGES_MS[choice], now_ms
    if choice != "custom":
        raise ValidationFailedError(f"range must be one of {', '.join(RANGES_MS)} or custom", field="range")
    if start is None or end is None:
        raise ValidationFailedError("a custom range needs from and to", field="from")
    if not start < end <= start + MAX_SPAN_MS:
        raise ValidationFailedError("from must be before to, at most 366 days apart", field="to")
    return start, end


def _bucket_ms(start: int, end: int) -> int:
    """Whole seconds per bucket, so that the range makes at most :data:`MAX_POINTS` buckets."""
    return max(MIN_BUCKET_MS, math.ceil((end - start) / MAX_POINTS / 1000) * 1000)


async def _series(session: AsyncSession, query: HistoryQuery, start: int, end: int) -> dict[str, Any]:
    """The sensor's points, oldest first, as uPlot takes them (times in seconds)."""
    rows, more = await readings(session, query)
    if not more:
        points = [(row["timestamp"], row["value"]) for row in reversed(rows) if not isinstance(row["value"], str)]
        return {
            "bucketMs": None,
            "times": [datetime.fromisoformat(at).timestamp() for at, _ in points],
            "values": [value for _, value in points],
        }
    bucket_ms = _bucket_ms(start, end)
    buckets, _ = await aggregates(session, replace(query, limit=MAX_POINTS + 2), bucket_ms)
    numeric = [row for row in reversed(buckets) if row["count"]]
    return {
        "bucketMs": bucket_ms,
        # A bucket is drawn in its middle, where a live reading of the same moment would fall.
        "times": [datetime.fromisoformat(row["bucket"]).timestamp() + bucket_ms / 2000 for row in numeric],
        "values": [row["avg"] for row in numeric],
        "lows": [row["min"] for row in numeric],
        "highs": [row["max"] for row in numeric],
    }


def _described(sensor: str, definition: TelemetryDefinition | None) -> dict[str, Any]:
    if definition is None:
        return {"sensor": sensor, "name": sensor, "unit": "", "definitionId": None, "min": None, "max": None}
    return {
        "sensor": sensor,
        "name": definition.name or sensor,
        "unit": definition.unit,
        "definitionId": definition.id,
        "min": definition.min_threshold,
        "max": definition.max_threshold,
    }


@router.get("/charts", summary="A device's sensor charts")
async def chart_data(
    device_id: str,
    frame: OrgFrame,
    session: SessionDep,
    choice: Annotated[str, Query(alias="range", max_length=10)] = "24h",
    start: Annotated[Millis, Query(alias="from")] = None,
    end: Annotated[Millis, Query(alias="to")] = None,
) -> dict[str, Any]:
    """Every sensor of the device with its thresholds and its points in the range (Unix milliseconds), as JSON."""
    device = await get_device(session, frame.org.id, device_id)
    start_ms, end_ms = _span(choice, start, end, int(time.time() * 1000))
    defined = {definition.key: definition for definition in await device_definitions(session, device.id)}
    names = list(defined)
    names += [name for name in await sensors(session, device.id, MAX_SENSORS) if name not in defined]
    charts = []
    for name in names[:MAX_SENSORS]:
        query = HistoryQuery(device.id, sensor=name, start_ms=start_ms, end_ms=end_ms, limit=MAX_POINTS)
        charts.append(_described(name, defined.get(name)) | await _series(session, query, start_ms, end_ms))
    return {"from": start_ms, "to": end_ms, "live": choice != "custom", "sensors": charts}
