"""The database on SQLite and on a real PostgreSQL: migrations, model parity, first run."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

import mqtthub.models
from mqtthub.auth.bootstrap import bootstrap_first_run
from mqtthub.auth.passwords import verify_password
from mqtthub.db import Base, Database
from mqtthub.db.migrate import upgrade
from mqtthub.errors import StateError
from mqtthub.models import Organization, User, UserRole


def _schema_differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_migrations_create_exactly_the_models(database_url: str) -> None:
    assert mqtthub.models.__all__
    await upgrade(database_url)
    async with Database(database_url) as database:
        async with database.engine.connect() as connection:
            differences = await connection.run_sync(_schema_differences)
        assert differences == []
        assert await database.ping()


async def test_migrations_are_idempotent(database_url: str) -> None:
    await upgrade(database_url)
    await upgrade(database_url)


async def test_first_run_creates_admin_once(database_url: str) -> None:
    await upgrade(database_url)
    async with Database(database_url) as database:
        async with database.session() as session:
            first = await bootstrap_first_run(
                session, admin_email="Root@Example.com", admin_password=None, organization_name="Acme Corp"
            )
        assert first is not None
        assert first.password is not None
        async with database.session() as session:
            again = await bootstrap_first_run(
                session, admin_email="other@example.com", admin_password=None, organization_name="x"
            )
            assert again is None
            users = (await session.scalars(select(User))).all()
            assert len(users) == 1
            assert users[0].email == "root@example.com"
            assert users[0].role is UserRole.PLATFORM_ADMIN
            assert verify_password(users[0].password_hash, first.password)
            assert users[0].password_hash != first.password
            organization = await session.get(Organization, first.organization_id)
            assert organization is not None
            assert organization.short_id.startswith("acmeco")
            assert 6 <= len(organization.short_id) <= 10
            assert organization.created_at.tzinfo is not None


async def test_session_rolls_back_on_error(database_url: str) -> None:
    await upgrade(database_url)
    async with Database(database_url) as database:

        async def add_then_fail() -> None:
            async with database.session() as session:
                session.add(Organization(name="ghost", short_id="ghost123"))
                await session.flush()
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            await add_then_fail()
        async with database.session() as session:
            assert await session.scalar(select(func.count()).select_from(Organization)) == 0


async def test_database_is_opened_once(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(StateError):
        _ = database.engine
    async with database:
        with pytest.raises(StateError):
            await database.__aenter__()
    with pytest.raises(StateError):
        await database.__aenter__()
