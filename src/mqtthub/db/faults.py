"""Whose fault a failed write is: the rows' own (refuse them) or the database's (keep them and retry).

A writer that acknowledges only what is committed must never turn "the database cannot write
now" into "this message is bad": the first means wait and try again, the second means reject
the one message. The decision is made from the error's kind, never from its message text:

- PostgreSQL (asyncpg) errors carry a SQLSTATE. Classes ``21`` (cardinality), ``22`` (data
  exception), ``23`` (integrity constraint violation) and ``54`` (program limit exceeded, e.g.
  a value too large for an index) are about the rows; every other class (``08`` connection,
  ``25`` read-only transaction, ``40`` serialization/deadlock, ``42`` schema or privileges,
  ``53`` disk full, ``55`` lock timeout, ``57`` shutdown, ``58`` I/O, ``XX`` internal, ...) is
  about the database.
- SQLite errors carry a result code whose low byte is the primary code. ``SQLITE_TOOBIG``,
  ``SQLITE_CONSTRAINT`` and ``SQLITE_MISMATCH`` are about the rows; ``SQLITE_BUSY``,
  ``SQLITE_LOCKED``, ``SQLITE_READONLY``, ``SQLITE_IOERR``, ``SQLITE_FULL`` and the rest are
  about the database.
- A driver error without a code (connection closed, pool timeout, socket error) is about
  the database, except SQLite's own binding errors. An error that does not come from the
  database at all (a value the driver cannot bind) is about the rows.
"""

from __future__ import annotations

import enum
import sqlite3
from dataclasses import dataclass
from typing import Final

from sqlalchemy import exc as sa_exc

RETRY_AFTER: Final = 5
"""Seconds an HTTP client is told to wait (``Retry-After``) while the database cannot serve it."""


class FaultKind(enum.Enum):
    """Who is to blame for a failed write."""

    DATA = "data"
    """The rows themselves are unacceptable: writing them again fails again."""
    DATABASE = "database"
    """The database cannot take the write now: the same rows may succeed later."""


@dataclass(frozen=True, slots=True)
class WriteFault:
    """A classified write error.

    Attributes:
        kind: Whose fault it is.
        reason: A short phrase for logs and ``/health`` ("disk full", "connection lost").
        code: The SQLSTATE or SQLite result code name, when the database gave one.
    """

    kind: FaultKind
    reason: str
    code: str | None = None


_PG_DATA_CLASSES: Final = {
    "21": "cardinality violation",
    "22": "invalid value",
    "23": "constraint violation",
    "54": "value beyond a database limit",
}
_PG_STATES: Final = {
    "25006": "read-only",
    "53100": "disk full",
    "53200": "out of memory",
    "53300": "too many connections",
    "55P03": "lock timeout",
    "57014": "statement cancelled",
    "57P01": "server shut down",
    "57P02": "server crashed",
    "57P03": "server starting up or shutting down",
    "57P04": "database dropped",
}
_PG_CLASSES: Final = {
    "08": "connection lost",
    "25": "invalid transaction state",
    "28": "authorization failed",
    "3D": "database does not exist",
    "40": "transaction rolled back (serialization or deadlock)",
    "42": "schema or privilege error",
    "53": "insufficient resources",
    "55": "object not in prerequisite state",
    "57": "operator intervention",
    "58": "system I/O error",
    "F0": "configuration file error",
    "XX": "internal error",
}

# SQLite primary result codes (https://sqlite.org/rescode.html).
_SQLITE_DATA: Final = {18: "value too big", 19: "constraint violation", 20: "datatype mismatch"}
_SQLITE_DATABASE: Final = {
    1: "SQL error",
    3: "permission denied",
    4: "aborted",
    5: "database busy",
    6: "database locked",
    7: "out of memory",
    8: "read-only",
    9: "interrupted",
    10: "I/O error",
    11: "database corrupt",
    13: "disk full",
    14: "cannot open the database file",
    15: "lock protocol error",
    26: "not a database",
}


def _pg(sqlstate: str) -> WriteFault:
    cls = sqlstate[:2]
    if cls in _PG_DATA_CLASSES:
        return WriteFault(FaultKind.DATA, _PG_DATA_CLASSES[cls], sqlstate)
    reason = _PG_STATES.get(sqlstate) or _PG_CLASSES.get(cls) or f"database error {sqlstate}"
    return WriteFault(FaultKind.DATABASE, reason, sqlstate)


def _sqlite(error: sqlite3.Error) -> WriteFault:
    code = getattr(error, "sqlite_errorcode", None)
    name = getattr(error, "sqlite_errorname", None)
    if not isinstance(code, int):
        # No result code: raised by the sqlite3 module itself. Its ProgrammingError, InterfaceError and
        # DataError are about the values (a parameter that cannot be bound); the writer opens a new
        # connection after every error, so a closed connection cannot be taken for bad rows twice.
        if isinstance(error, sqlite3.ProgrammingError | sqlite3.InterfaceError | sqlite3.DataError):
            return WriteFault(FaultKind.DATA, "value cannot be bound", None)
        return WriteFault(FaultKind.DATABASE, "connection unusable", None)
    primary = code & 0xFF
    if primary in _SQLITE_DATA:
        return WriteFault(FaultKind.DATA, _SQLITE_DATA[primary], name)
    return WriteFault(FaultKind.DATABASE, _SQLITE_DATABASE.get(primary, f"database error {primary}"), name)


def _causes(error: BaseException) -> list[BaseException]:
    """The error, what SQLAlchemy wrapped (``orig``) and the explicit causes (``raise ... from``), once each."""
    seen: list[BaseException] = []
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop(0)
        if current is None or any(current is known for known in seen):
            continue
        seen.append(current)
        pending.extend((getattr(current, "orig", None), current.__cause__))
    return seen


def classify(error: BaseException) -> WriteFault:
    """Whose fault ``error``, raised while writing, is; see the module docstring."""
    chain = _causes(error)
    for cause in chain:
        sqlstate = getattr(cause, "sqlstate", None)
        if isinstance(sqlstate, str) and len(sqlstate) == 5:
            return _pg(sqlstate)
        if isinstance(cause, sqlite3.Error):
            return _sqlite(cause)
    for cause in chain:
        if isinstance(cause, sa_exc.DBAPIError) and cause.connection_invalidated:
            return WriteFault(FaultKind.DATABASE, "connection lost")
        if isinstance(cause, (ConnectionError, TimeoutError, sa_exc.TimeoutError)):
            return WriteFault(
                FaultKind.DATABASE, "connection lost" if isinstance(cause, ConnectionError) else "timeout"
            )
        if isinstance(cause, (OSError, sa_exc.DBAPIError, sa_exc.DisconnectionError, sa_exc.ResourceClosedError)):
            return WriteFault(FaultKind.DATABASE, "connection lost")
        if type(cause).__module__.split(".")[0] in ("asyncpg", "aiosqlite"):
            # A driver error without a SQLSTATE (asyncpg's InterfaceError: the connection is closed).
            return WriteFault(FaultKind.DATABASE, "connection lost")
    return WriteFault(FaultKind.DATA, f"not storable ({type(error).__name__})")


def unavailable(error: BaseException) -> WriteFault | None:
    """The fault when ``error`` comes from a database that cannot serve now (HTTP 503 rather than 500), else None."""
    chain = _causes(error)
    from_database = any(
        isinstance(cause, sa_exc.SQLAlchemyError | sqlite3.Error | ConnectionError | TimeoutError)
        or isinstance(getattr(cause, "sqlstate", None), str)
        for cause in chain
    )
    if not from_database:
        return None
    fault = classify(error)
    return fault if fault.kind is FaultKind.DATABASE else None
