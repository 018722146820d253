"""Which hub runs a product's connector, when several hubs share one PostgreSQL database.

In external broker mode every hub reads the same integration configuration, and a remote
message must trigger its actions once, not once per hub. So a hub runs a product's connector
only while it holds that product's lease: a PostgreSQL session-level advisory lock taken on
one dedicated connection. The lock lives exactly as long as that connection: a hub that stops
unlocks it, and a hub that dies (``kill -9``, power loss) loses its connection, which
PostgreSQL ends at once when the socket closes, or within the server's TCP keepalive when the
host vanishes. The other hubs retry every ``MQTTHUB_INTEGRATION_LEASE_INTERVAL`` seconds, so
a connector is back on a live hub within that interval after its holder's connection ends.

The connection's ``application_name`` names the hub, so any hub can tell who holds a lease
(``pg_locks`` joined with ``pg_stat_activity``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from types import TracebackType

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from mqtthub.db import Database
from mqtthub.errors import StateError

logger = logging.getLogger(__name__)

LEASE_CLASS = 0x6D7168
"""First key of every lease's advisory lock (``mqh``), so that no other lock of the database collides."""
APPLICATION_PREFIX = "mqtthub-lease:"


def lease_key(product_id: str) -> int:
    """The second key of a product's advisory lock: a stable positive 31-bit hash of its id.

    Two products that collide share one lock, so both run on the same hub: still once each.
    """
    return int.from_bytes(hashlib.sha256(product_id.encode()).digest()[:4], "big") & 0x7FFFFFFF


class ConnectorLeases:
    """The leases one hub holds, on its own PostgreSQL connection; an async context manager.

    Args:
        database: The shared PostgreSQL database (open).
        hub: This hub's name, shown as the holder of its leases.
    """

    def __init__(self, database: Database, hub: str) -> None:
        self._database = database
        self.hub = hub
        self._connection: AsyncConnection | None = None
        self._held: set[str] = set()
        self._closed = False
        self._lock = asyncio.Lock()
        """One statement at a time on the connection: the reload and lease loops both use it."""

    async def __aenter__(self) -> ConnectorLeases:
        if self._closed:
            raise StateError("connector leases cannot be reopened")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closed = True
        async with self._lock:
            await self._drop()

    @property
    def held(self) -> frozenset[str]:
        """Products whose lease this hub holds."""
        return frozenset(self._held)

    async def _open(self) -> AsyncConnection:
        if self._closed:
            raise StateError("connector leases are closed")
        if self._connection is None:
            connection = await self._database.engine.connect()
            try:
                await connection.execute(
                    text("SELECT set_config('application_name', :name, false)"),
                    {"name": (APPLICATION_PREFIX + self.hub)[:63]},
                )
                await connection.commit()
            except BaseException:
                await connection.close()
                raise
            self._connection = connection
        return self._connection

    async def _drop(self) -> None:
        """Close the lease connection: every lease it held is free for other hubs."""
        connection, self._connection = self._connection, None
        self._held.clear()
        if connection is None:
            return
        try:
            # The pool keeps the session alive after close, and session locks with it: unlock first.
            await connection.execute(text("SELECT pg_advisory_unlock_all()"))
            await connection.commit()
            await connection.close()
        except Exception as exc:  # the connection is gone already, and its locks with it
            logger.info("integrations: lease connection closed with an error: %s", exc)
            await connection.invalidate()

    async def acquire(self, product_id: str) -> bool:
        """Take the product's lease if no hub holds it; True when this hub holds it (now or already)."""
        if product_id in self._held:
            return True
        async with self._lock:
            connection = await self._open()
            result = await connection.execute(
                text("SELECT pg_try_advisory_lock(:c, :k)"), {"c": LEASE_CLASS, "k": lease_key(product_id)}
            )
            acquired = bool(result.scalar_one())
            await connection.commit()
        if acquired:
            self._held.add(product_id)
            logger.info("integrations: this hub (%s) now runs the connector of product %s", self.hub, product_id)
        return acquired

    async def release(self, product_id: str) -> None:
        """Give up the product's lease (its connector stopped here)."""
        async with self._lock:
            if product_id not in self._held or self._connection is None:
                return
            self._held.discard(product_id)
            if any(lease_key(other) == lease_key(product_id) for other in self._held):
                return  # a colliding product still runs here under the same lock
            await self._connection.execute(
                text("SELECT pg_advisory_unlock(:c, :k)"), {"c": LEASE_CLASS, "k": lease_key(product_id)}
            )
            await self._connection.commit()

    async def check(self) -> set[str]:
        """Probe the lease connection; when it is lost, return the products whose leases went with it."""
        async with self._lock:
            if self._connection is None:
                return set()
            try:
                await self._connection.execute(text("SELECT 1"))
                await self._connection.commit()
            except Exception as exc:
                lost = set(self._held)
                logger.warning("integrations: lease connection lost (%s); stopping %d connector(s)", exc, len(lost))
                await self._drop()
                return lost
            return set()

    async def holder(self, product_id: str) -> str | None:
        """The name of the hub holding the product's lease, or None when no hub does."""
        if product_id in self._held:
            return self.hub
        async with self._database.engine.connect() as connection:
            result = await connection.execute(
                text(
                    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
                    "AND l.classid = CAST(:c AS oid) AND l.objid = CAST(:k AS oid) LIMIT 1"
                ),
                {"c": LEASE_CLASS, "k": lease_key(product_id)},
            )
            name = result.scalar_one_or_none()
        if not isinstance(name, str):
            return None
        return name.removeprefix(APPLICATION_PREFIX)
