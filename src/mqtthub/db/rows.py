"""Reading rows in one round trip through the driver, for the lookups on the CONNECT path.

SQLAlchemy's SQLite driver (aiosqlite) runs every step of a query in its worker thread as a hop of
its own: opening a cursor, executing, fetching the rows, closing the cursor. Each hop wakes the
thread and then the event loop, and together they cost about 1 ms of CPU per query, while SQLite
answers an indexed lookup in microseconds. A fleet reconnecting after a restart pays that once per
batch of credential lookups. :func:`fetch_all` hands SQLite the statement and the fetch in one hop,
and PostgreSQL one prepared statement, skipping SQLAlchemy's statement building as well.

Statements are plain SQL with ``?`` placeholders, for the few hot reads written once for both
databases. Values come back as the driver gives them: read datetimes with :func:`utc` and JSON
columns with :func:`json_value`, which give the same on both.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

T = TypeVar("T")

_NUMBERED: dict[str, str] = {}
"""Statements with ``?`` marks already rewritten with PostgreSQL's ``$n``."""


async def fetch_all(
    connection: AsyncConnection, columns: str, rest: str, parameters: Sequence[Any]
) -> list[Sequence[Any]]:
    """The rows of ``SELECT {columns} {rest}`` (``?`` placeholders) with ``parameters``, in one round trip.

    On SQLite the rows come back as one: a JSON array of arrays, built by SQLite. Each row SQLite steps to is a
    release and a re-acquisition of the interpreter lock by its worker thread, which the busy event loop pays
    for as well; one row is one step whatever the batch. Columns must then be what JSON carries: text, numbers,
    NULL (no blobs).
    """
    if connection.dialect.name == "sqlite":
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection
        sql = f"SELECT json_group_array(json_array({columns})) {rest}"
        ((found,),) = await driver.execute_fetchall(sql, tuple(parameters))
        rows: list[Sequence[Any]] = json.loads(found)
        return rows
    result = await connection.exec_driver_sql(_numbered(f"SELECT {columns} {rest}"), tuple(parameters))
    return list(result.all())


def padded(values: Sequence[T]) -> list[T]:
    """``values`` padded to the next power of two by repeating the last one.

    Batches of every size then run as a handful of distinct statements, each prepared once; the caller makes
    sure a repeated value changes nothing (it selects no more rows, or writes the same row again).
    """
    if not values:
        raise ValueError("nothing to pad: at least one value is needed")
    size = 1 << (len(values) - 1).bit_length()
    return [*values, *(values[-1] for _ in range(size - len(values)))]


def in_list(values: Sequence[Any]) -> tuple[str, list[Any]]:
    """``IN (…)`` placeholders for ``values`` and the parameters to go with them (:func:`padded`)."""
    parameters = padded(values)
    return "(" + ", ".join("?" * len(parameters)) + ")", parameters


def utc(value: datetime | str | None) -> datetime | None:
    """A datetime column's value as a timezone-aware UTC datetime (SQLite gives text without a zone)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def json_value(value: Any) -> Any:
    """A JSON column's value decoded (both drivers give the text as SQLAlchemy stored it)."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def _numbered(sql: str) -> str:
    numbered = _NUMBERED.get(sql)
    if numbered is None:
        parts = sql.split("?")
        numbered = parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], 1))
        if len(_NUMBERED) < 1_000:
            _NUMBERED[sql] = numbered
    return numbered
