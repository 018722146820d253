"""A :class:`~mqtthub.broker.persistence.StateStore` in its own SQLite file, written from one thread.

The broker's journal hands over one batch at a time; this store applies it in one transaction
on its writer thread, so the event loop never waits on the disk (it only awaits the batch).
``synchronous=FULL`` (``durable=True``, the ``sync`` mode) makes each committed batch survive a
power cut as well as ``kill -9``; ``NORMAL`` (``periodic``) survives ``kill -9`` only.

A file that cannot be opened, is not a database, fails SQLite's quick check or has a schema this
version does not know is moved aside (``<name>.bad-<unix time>``, with its WAL and shared-memory
files), the hub logs it as an error and starts with empty broker state: losing retained messages
and sessions is better than not serving at all.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from mqtthub.broker.persistence import StateBatch, StoredState
from mqtthub.brokerstate.rows import held_row, message_row, read_held, read_message, read_session, session_row
from mqtthub.errors import StateError

logger = logging.getLogger(__name__)

_R = TypeVar("_R")

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS retained (
    topic TEXT PRIMARY KEY, payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL,
    properties BLOB NOT NULL, received_at REAL NOT NULL, publisher TEXT
);
CREATE TABLE IF NOT EXISTS sessions (
    mountpoint TEXT NOT NULL, client_id TEXT NOT NULL, principal TEXT NOT NULL, expiry_interval INTEGER NOT NULL,
    disconnected_at REAL, subscriptions TEXT NOT NULL, inbound_qos2 TEXT NOT NULL, will_topic TEXT,
    will_payload BLOB, will_qos INTEGER NOT NULL, will_retain INTEGER NOT NULL, will_properties BLOB, will_at REAL,
    PRIMARY KEY (mountpoint, client_id)
);
CREATE TABLE IF NOT EXISTS held (
    store_id INTEGER PRIMARY KEY, mountpoint TEXT NOT NULL, client_id TEXT NOT NULL,
    topic TEXT NOT NULL, payload BLOB NOT NULL, message_qos INTEGER NOT NULL, message_retain INTEGER NOT NULL,
    properties BLOB NOT NULL, received_at REAL NOT NULL, publisher TEXT,
    qos INTEGER NOT NULL, retain INTEGER NOT NULL, identifiers TEXT NOT NULL, share_group TEXT, share_filter TEXT,
    packet_id INTEGER NOT NULL, released INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS held_by_session ON held (mountpoint, client_id);
"""

_UPSERT_RETAINED = "INSERT OR REPLACE INTO retained VALUES (?, ?, ?, ?, ?, ?, ?)"
_UPSERT_SESSION = "INSERT OR REPLACE INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_UPSERT_HELD = "INSERT OR REPLACE INTO held VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"


class BadStateFile(Exception):
    """The state file is unusable (see the module docstring); it is moved aside."""


class SQLiteStateStore:
    """Broker state in the SQLite file ``path`` (see the module docstring).

    Args:
        path: The state file; created (mode 0600) when missing.
        durable: ``synchronous=FULL`` rather than ``NORMAL``.
        busy_timeout: Seconds a write waits for a lock held by another process before it fails (and is retried).
    """

    def __init__(self, path: Path, *, durable: bool = True, busy_timeout: float = 5.0) -> None:
        self.path = path
        self.durable = durable
        self.busy_timeout = busy_timeout
        self.moved_aside: Path | None = None
        """Where a bad state file found on opening went."""
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None

    async def __aenter__(self) -> Self:
        """Open (or create) the file on the writer thread."""
        if self._executor is not None:
            raise StateError("the broker state store is already open")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="broker-state")
        try:
            await self._run(self._open)
        except BaseException:
            self._executor.shutdown()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Close the file and the thread."""
        await self.close()

    async def close(self) -> None:
        """See :meth:`StateStore.close`; closing twice is a no-op."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        await asyncio.get_running_loop().run_in_executor(executor, self._close)
        executor.shutdown()

    async def read(self) -> StoredState:
        """See :meth:`StateStore.read`."""
        return await self._run(self._read)

    async def write(self, batch: StateBatch) -> None:
        """See :meth:`StateStore.write`."""
        await self._run(self._write, batch)

    async def _run(self, function: Callable[..., _R], *args: Any) -> _R:
        if self._executor is None:
            raise StateError("the broker state store is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    # -- on the writer thread -------------------------------------------------------------------------

    def _open(self) -> None:
        try:
            self._db = self._connect()
        except (sqlite3.DatabaseError, OSError, BadStateFile) as exc:
            self._move_aside(exc)
            self._db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        db = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={'FULL' if self.durable else 'NORMAL'}")
            if db.execute("PRAGMA quick_check").fetchone() != ("ok",):
                raise BadStateFile("the quick check found damage")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise BadStateFile(f"schema version {version} is not {SCHEMA_VERSION}")
            db.executescript(_SCHEMA)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            db.execute("SELECT count(*) FROM retained").fetchone()
        except BaseException:
            db.close()
            raise
        return db

    def _move_aside(self, exc: BaseException) -> None:
        aside = self.path.with_name(f"{self.path.name}.bad-{int(time.time())}")
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{self.path}{suffix}")
            if source.exists():
                source.replace(Path(f"{aside}{suffix}"))
        self.moved_aside = aside
        logger.error(
            "broker state file %s is unusable (%s); moved to %s, starting without stored retained messages "
            "and sessions",
            self.path,
            exc,
            aside,
        )

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise StateError("the broker state store is not open")
        return self._db

    def _read(self) -> StoredState:
        db = self._connection()
        return StoredState(
            _decoded(db, "SELECT * FROM retained", read_message),
            _decoded(db, "SELECT * FROM sessions", read_session),
            _decoded(db, "SELECT * FROM held ORDER BY store_id", read_held),
        )

    def _write(self, batch: StateBatch) -> None:
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            for mountpoint, client_id in batch.discarded:
                db.execute("DELETE FROM sessions WHERE mountpoint = ? AND client_id = ?", (mountpoint, client_id))
                db.execute("DELETE FROM held WHERE mountpoint = ? AND client_id = ?", (mountpoint, client_id))
            db.executemany(_UPSERT_SESSION, [session_row(record) for record in batch.sessions])
            puts = [held_row(held) for held in batch.held.values() if held is not None]
            deletes = [(store_id,) for store_id, held in batch.held.items() if held is None]
            db.executemany("DELETE FROM held WHERE store_id = ?", deletes)
            db.executemany(_UPSERT_HELD, puts)
            retained = batch.retained
            db.executemany(_UPSERT_RETAINED, [message_row(m) for m in retained.values() if m is not None])
            db.executemany("DELETE FROM retained WHERE topic = ?", [(t,) for t, m in retained.items() if m is None])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise


def _decoded(db: sqlite3.Connection, query: str, decode: Callable[[tuple[Any, ...]], _R]) -> list[_R]:
    records: list[_R] = []
    skipped = 0
    for row in db.execute(query):
        try:
            records.append(decode(row))
        except Exception as exc:  # one damaged row costs that row, not the others
            skipped += 1
            if skipped == 1:
                logger.error("unreadable row of the broker state skipped (%s): %r", query, exc)
    if skipped > 1:
        logger.error("%d unreadable rows of the broker state skipped (%s)", skipped, query)
    return records
