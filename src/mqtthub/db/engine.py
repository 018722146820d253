"""The database resource: one async engine and its session factory, opened and closed by the hub."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from mqtthub.db.changes import BUS_KEY, ChangeBus
from mqtthub.errors import StateError

logger = logging.getLogger(__name__)


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, connection_record: ConnectionPoolEntry) -> None:
    # WAL lets readers go on while the ingest writer commits; NORMAL sync is durable in WAL mode
    # against process crashes (kill -9), which is the failure the hub promises to survive.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class Database:
    """An async SQLAlchemy engine with a session factory; an async context manager.

    The transaction boundary is at the edge: callers use :meth:`session` (commits on
    success, rolls back on error); services inside only flush.
    """

    def __init__(self, url: str, *, echo: bool = False, changes: ChangeBus | None = None) -> None:
        self.url = url
        self._echo = echo
        self.changes = changes if changes is not None else ChangeBus()
        """Where the events recorded on this database's sessions go once they commit (:mod:`mqtthub.db.changes`)."""
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self._closed = False

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.engine.dialect.name

    @property
    def engine(self) -> AsyncEngine:
        """The open engine."""
        if self._engine is None:
            raise StateError("the database is not open")
        return self._engine

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        """The session factory of the open engine."""
        if self._sessions is None:
            raise StateError("the database is not open")
        return self._sessions

    async def __aenter__(self) -> Database:
        if self._engine is not None or self._closed:
            raise StateError("a Database can be opened only once")
        kwargs: dict[str, Any] = {"echo": self._echo, "pool_pre_ping": True}
        if self.url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 30}
        self._engine = create_async_engine(self.url, **kwargs)
        if self._engine.dialect.name == "sqlite":
            event.listen(self._engine.sync_engine, "connect", _sqlite_pragmas)
        # Each session carries the bus, so that what a service records reaches it after the commit.
        self._sessions = async_sessionmaker(self._engine, expire_on_commit=False, info={BUS_KEY: self.changes})
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closed = True
        if self._engine is not None:
            await self._engine.dispose()
        self._engine = None
        self._sessions = None

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session whose transaction commits when the block ends without error."""
        async with self.sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """A connection on which every statement commits by itself, for small reads and one-statement writes.

        A read sees every change committed before it (no transaction keeps an older snapshot open), and
        there is no begin, commit or rollback round trip around each statement: what a connection held
        for a burst of lookups needs.
        """
        async with self.engine.connect() as connection:
            yield await connection.execution_options(isolation_level="AUTOCOMMIT")

    async def ping(self) -> bool:
        """True when a trivial query succeeds."""
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:  # any driver error means "down" for health reporting
            logger.warning("database ping failed", exc_info=True)
            return False
        return True
