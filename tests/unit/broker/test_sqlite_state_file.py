"""The SQLite broker state file: bad files are moved aside and the hub starts empty; the file is private."""

from __future__ import annotations

import logging
import sqlite3
import stat
from pathlib import Path

import pytest

from mqtthub.broker.hooks import BrokerMessage
from mqtthub.broker.persistence import StateBatch
from mqtthub.brokerstate import SQLiteStateStore


async def test_new_file_is_private(tmp_path: Path) -> None:
    async with SQLiteStateStore(tmp_path / "state" / "broker-state.db") as store:
        await store.write(StateBatch(retained={"t": BrokerMessage("t", b"v", retain=True)}))
    assert stat.S_IMODE((tmp_path / "state" / "broker-state.db").stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda path: path.write_bytes(b"this is not a database" * 100), id="not-a-database"),
        pytest.param(lambda path: _truncate_pages(path), id="truncated"),
        pytest.param(lambda path: _other_schema(path), id="unknown-schema"),
        pytest.param(lambda path: _directory_instead(path), id="unopenable"),
    ],
)
async def test_bad_file_is_moved_aside_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: object
) -> None:
    path = tmp_path / "broker-state.db"
    async with SQLiteStateStore(path) as store:
        await store.write(StateBatch(retained={f"t/{i}": BrokerMessage(f"t/{i}", b"v" * 2000) for i in range(50)}))
    assert callable(damage)
    damage(path)
    with caplog.at_level(logging.ERROR, logger="mqtthub.brokerstate.sqlite"):
        async with SQLiteStateStore(path) as store:
            state = await store.read()
            assert state.retained == []
            assert store.moved_aside is not None
            assert store.moved_aside.exists()
            await store.write(StateBatch(retained={"new": BrokerMessage("new", b"v")}))
    assert "unusable" in caplog.text
    assert str(store.moved_aside) in caplog.text
    async with SQLiteStateStore(path) as store:
        assert [m.topic for m in (await store.read()).retained] == ["new"]


async def test_unreadable_rows_are_skipped_not_fatal(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "broker-state.db"
    async with SQLiteStateStore(path) as store:
        await store.write(StateBatch(retained={"good": BrokerMessage("good", b"v"), "bad": BrokerMessage("bad", b"v")}))
    with sqlite3.connect(path) as db:
        db.execute("UPDATE retained SET properties = x'05ff' WHERE topic = 'bad'")
    with caplog.at_level(logging.ERROR, logger="mqtthub.brokerstate.sqlite"):
        async with SQLiteStateStore(path) as store:
            assert [m.topic for m in (await store.read()).retained] == ["good"]
    assert "unreadable row" in caplog.text


def _truncate_pages(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:100] + b"\x00" * (len(data) - 100))
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _other_schema(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version=99")


def _directory_instead(path: Path) -> None:
    path.unlink()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.mkdir()
    (path / "something").write_text("not ours")
