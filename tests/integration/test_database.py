"""The database on SQLite and on a real PostgreSQL: migrations, model parity, first run."""

from __future__ import annotations

from datetime import UTC, datetime
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
from mqtthub.db.rows import fetch_all, in_list, json_value, utc
from mqtthub.errors import StateError
from mqtthub.models import MqttApiToken, Organization, User, UserRole


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


async def test_one_hop_reads_give_what_the_orm_gives(database_url: str) -> None:
    """fetch_all with utc/json_value reads datetimes, flags and JSON as the models do, on both databases."""
    await upgrade(database_url)
    async with Database(database_url) as database:
        async with database.session() as session:
            organization = Organization(name="Rows", short_id="rows0001")
            session.add(organization)
            await session.flush()
            token = MqttApiToken(
                organization_id=organization.id,
                name="reader",
                token_hash="h" * 64,
                hint="mqh_mqtt_rows0001_abcd…",
                subscribe=["device/+/telemetry/#"],
                publish=[],
                expires_at=datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
            )
            session.add(token)
        async with database.session() as session:
            stored = await session.get(MqttApiToken, token.id)
            assert stored is not None
        async with database.autocommit() as connection:
            marks, parameters = in_list(["h" * 64, "missing"])
            columns = "id, expires_at, revoked_at, subscribe, publish"
            rows = await fetch_all(connection, columns, "FROM mqtt_api_tokens WHERE token_hash IN " + marks, parameters)
    assert len(rows) == 1
    token_id, expires, revoked, subscribe, publish = rows[0]
    assert token_id == stored.id
    assert utc(expires) == stored.expires_at == datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    assert utc(revoked) is None
    assert json_value(subscribe) == stored.subscribe == ["device/+/telemetry/#"]
    assert json_value(publish) == []
