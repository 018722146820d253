"""Real commit failures on SQLite and PostgreSQL: a transaction that wrote to one table fails at COMMIT.

A trigger on the table writes a row that breaks a deferred foreign key. Both databases check a deferred key
only when the transaction commits, so every statement of the transaction succeeds (flushes included) and the
COMMIT itself is refused with an integrity error, as it would be by a constraint checked at commit time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text

from mqtthub.db import Database

_GUARD = "refused_commits"
_INSERT = "INSERT INTO refused_commits VALUES ('00000000-0000-0000-0000-000000000000')"
"""A row whose organization does not exist: the deferred key refuses it at COMMIT."""
_EVENTS = ("INSERT", "UPDATE", "DELETE")


@asynccontextmanager
async def commits_refused(database: Database, table: str) -> AsyncIterator[None]:
    """Inside the block, every transaction that inserts, updates or deletes rows of ``table`` fails to commit."""
    statements = [
        f"CREATE TABLE {_GUARD} (organization_id VARCHAR(36) "
        "REFERENCES organizations (id) DEFERRABLE INITIALLY DEFERRED)"
    ]
    if database.dialect == "postgresql":
        statements.append(
            "CREATE FUNCTION refuse_commit() RETURNS trigger LANGUAGE plpgsql "
            f"AS $$ BEGIN {_INSERT}; RETURN NULL; END $$"
        )
        statements += [
            f"CREATE TRIGGER refuse_commit_{event.lower()} AFTER {event} ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION refuse_commit()"
            for event in _EVENTS
        ]
        cleanup = [f"DROP TABLE {_GUARD}", "DROP FUNCTION refuse_commit() CASCADE"]
    else:
        statements += [
            f"CREATE TRIGGER refuse_commit_{event.lower()} AFTER {event} ON {table} BEGIN {_INSERT}; END"
            for event in _EVENTS
        ]
        cleanup = [f"DROP TRIGGER refuse_commit_{event.lower()}" for event in _EVENTS] + [f"DROP TABLE {_GUARD}"]
    async with database.engine.begin() as connection:
        for statement in statements:
            await connection.execute(text(statement))
    try:
        yield
    finally:
        async with database.engine.begin() as connection:
            for statement in cleanup:
                await connection.execute(text(statement))
