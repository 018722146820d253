"""Write errors are classified by kind (SQLSTATE, SQLite result code): real errors from real databases."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError, StatementError

from mqtthub.db import Database
from mqtthub.db.faults import FaultKind, WriteFault, classify, unavailable
from tests.support.postgres import free_port


def _sqlite_error(path: Path, *statements: str, timeout: float = 5.0) -> sqlite3.Error:
    connection = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    try:
        for statement in statements:
            connection.execute(statement)
    except sqlite3.Error as exc:
        return exc
    finally:
        connection.close()
    raise AssertionError("the statements did not fail")


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    path = tmp_path / "f.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE t (n INTEGER PRIMARY KEY, s TEXT NOT NULL, pad BLOB)")
        connection.execute("INSERT INTO t (n, s) VALUES (1, 'x')")
    return path


def test_sqlite_rows_at_fault(sqlite_file: Path) -> None:
    duplicate = classify(_sqlite_error(sqlite_file, "INSERT INTO t (n, s) VALUES (1, 'y')"))
    assert duplicate == WriteFault(FaultKind.DATA, "constraint violation", "SQLITE_CONSTRAINT_PRIMARYKEY")
    assert classify(_sqlite_error(sqlite_file, "INSERT INTO t (n, s) VALUES (2, NULL)")).kind is FaultKind.DATA


def test_sqlite_disk_full_is_the_database(sqlite_file: Path) -> None:
    # max_page_count cannot go below the current size: the next page needed is "disk full" (SQLITE_FULL).
    fault = classify(
        _sqlite_error(
            sqlite_file, "PRAGMA max_page_count = 1", "INSERT INTO t (n, s, pad) VALUES (5, 'x', zeroblob(50000))"
        )
    )
    assert fault == WriteFault(FaultKind.DATABASE, "disk full", "SQLITE_FULL")


def test_sqlite_read_only_and_busy_are_the_database(sqlite_file: Path) -> None:
    read_only = sqlite3.connect(f"file:{sqlite_file}?mode=ro", uri=True)
    try:
        with pytest.raises(sqlite3.Error) as caught:
            read_only.execute("INSERT INTO t (n, s) VALUES (3, 'x')")
    finally:
        read_only.close()
    assert classify(caught.value) == WriteFault(FaultKind.DATABASE, "read-only", "SQLITE_READONLY")
    holder = sqlite3.connect(sqlite_file, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        busy = _sqlite_error(sqlite_file, "INSERT INTO t (n, s) VALUES (4, 'x')", timeout=0)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert classify(busy).kind is FaultKind.DATABASE
    assert classify(busy).reason in ("database busy", "database locked")


async def test_wrapped_by_sqlalchemy(sqlite_file: Path) -> None:
    async with Database(f"sqlite+aiosqlite:///{sqlite_file}") as database:
        with pytest.raises(IntegrityError) as duplicate:
            async with database.session() as session:
                await session.execute(text("INSERT INTO t (n, s) VALUES (1, 'again')"))
        assert classify(duplicate.value).kind is FaultKind.DATA
        with pytest.raises(StatementError) as unbindable:
            async with database.session() as session:
                await session.execute(text("INSERT INTO t (n, s) VALUES (9, :s)"), {"s": object()})
        assert classify(unbindable.value).kind is FaultKind.DATA
        with pytest.raises(OperationalError) as missing:
            async with database.session() as session:
                await session.execute(text("INSERT INTO no_such_table VALUES (1)"))
        # A schema problem is not the message's fault: keep it and wait for an operator.
        assert classify(missing.value) == WriteFault(FaultKind.DATABASE, "SQL error", "SQLITE_ERROR")


def test_socket_errors_and_unknown_errors() -> None:
    assert classify(ConnectionRefusedError(111, "refused")).reason == "connection lost"
    assert classify(TimeoutError()).kind is FaultKind.DATABASE
    assert classify(ValueError("not a number")).kind is FaultKind.DATA


def test_asyncpg_errors_by_sqlstate() -> None:
    assert classify(asyncpg.exceptions.CannotConnectNowError("shutting down")) == WriteFault(
        FaultKind.DATABASE, "server starting up or shutting down", "57P03"
    )
    assert classify(asyncpg.exceptions.DiskFullError("no space")).reason == "disk full"
    assert classify(asyncpg.exceptions.ReadOnlySQLTransactionError("ro")).reason == "read-only"
    assert classify(asyncpg.exceptions.LockNotAvailableError("lock")).reason == "lock timeout"
    assert classify(asyncpg.exceptions.ConnectionDoesNotExistError("gone")).kind is FaultKind.DATABASE
    assert classify(asyncpg.exceptions.InterfaceError("the connection is closed")).kind is FaultKind.DATABASE
    assert classify(asyncpg.exceptions.UniqueViolationError("dup")).kind is FaultKind.DATA
    assert classify(asyncpg.exceptions.CharacterNotInRepertoireError("nul")).kind is FaultKind.DATA


@pytest.fixture
def pg_url(postgres_base_url: str) -> str:
    return postgres_base_url.replace("postgresql+asyncpg://", "postgresql://") + "/postgres"


@pytest.mark.postgres
async def test_postgresql_errors_from_a_real_server(pg_url: str) -> None:
    connection = await asyncpg.connect(pg_url)
    try:
        # Not a temporary table: PostgreSQL lets read-only transactions write those.
        await connection.execute("CREATE TABLE IF NOT EXISTS fault_probe (n INTEGER PRIMARY KEY, s TEXT)")
        await connection.execute("TRUNCATE fault_probe")
        await connection.execute("INSERT INTO fault_probe VALUES (1, 'x')")
        faults: list[WriteFault] = []
        for statement in (
            "INSERT INTO fault_probe VALUES (1, 'y')",
            "SELECT 1 / 0",
            "INSERT INTO fault_probe VALUES (2, E'a\\x01' || chr(0))",
        ):
            with pytest.raises(asyncpg.PostgresError) as caught:
                await connection.execute(statement)
            faults.append(classify(caught.value))
        assert [fault.kind for fault in faults] == [FaultKind.DATA] * 3
        assert faults[0].code == "23505"
        async with connection.transaction(readonly=True):
            with pytest.raises(asyncpg.PostgresError) as read_only:
                await connection.execute("INSERT INTO fault_probe VALUES (3, 'x')")
        assert classify(read_only.value) == WriteFault(FaultKind.DATABASE, "read-only", "25006")
        await connection.execute("SET statement_timeout = 50")
        with pytest.raises(asyncpg.PostgresError) as cancelled:
            await connection.execute("SELECT pg_sleep(5)")
        assert classify(cancelled.value) == WriteFault(FaultKind.DATABASE, "statement cancelled", "57014")
        await connection.execute("RESET statement_timeout")
        # With a timeout, pg_terminate_backend waits until the backend is gone: the next statement meets it closed.
        killer = await asyncpg.connect(pg_url)
        try:
            await killer.execute("SELECT pg_terminate_backend($1, 10000)", connection.get_server_pid())
        finally:
            await killer.close()
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError)) as terminated:
            await connection.execute("SELECT 1")
        assert classify(terminated.value).kind is FaultKind.DATABASE
    finally:
        connection.terminate()


async def test_refused_connection_is_the_database() -> None:
    with pytest.raises(ConnectionRefusedError) as refused:
        await asyncio.wait_for(asyncpg.connect(f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"), 10)
    assert classify(refused.value) == WriteFault(FaultKind.DATABASE, "connection lost")


async def test_unavailable_is_only_for_database_faults(sqlite_file: Path) -> None:
    async with Database(f"sqlite+aiosqlite:///{sqlite_file}") as database:
        with pytest.raises(IntegrityError) as duplicate:
            async with database.session() as session:
                await session.execute(text("INSERT INTO t (n, s) VALUES (1, 'again')"))
    full = _sqlite_error(
        sqlite_file, "PRAGMA max_page_count = 1", "INSERT INTO t (n, s, pad) VALUES (5, 'x', zeroblob(50000))"
    )
    assert unavailable(full) == WriteFault(FaultKind.DATABASE, "disk full", "SQLITE_FULL")
    assert unavailable(ConnectionRefusedError(111, "refused")) is not None
    assert unavailable(asyncpg.exceptions.CannotConnectNowError("shutting down")) is not None
    # The rows' fault, or not the database at all: a bug is a 500, not a 503.
    assert unavailable(duplicate.value) is None
    assert unavailable(KeyError("x")) is None
    assert unavailable(OSError(2, "no such file")) is None
