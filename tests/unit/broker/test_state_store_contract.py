"""The contract every StateStore implementation must meet (one suite, run against each)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest

from mqtthub.broker.hooks import BrokerMessage, Principal
from mqtthub.broker.persistence import (
    HeldRecord,
    InMemoryStateStore,
    SessionRecord,
    StateBatch,
    StateStore,
    StoredState,
    SubscriptionRecord,
)
from mqtthub.brokerstate import SQLiteStateStore
from mqtthub.mqtt.packets import Properties, Will

StoreFactory = Callable[[Path], AbstractAsyncContextManager[StateStore]]


@asynccontextmanager
async def in_memory(_: Path) -> AsyncIterator[StateStore]:
    yield InMemoryStateStore()


@asynccontextmanager
async def sqlite_file(directory: Path) -> AsyncIterator[StateStore]:
    async with SQLiteStateStore(directory / "broker-state.db") as store:
        yield store


@asynccontextmanager
async def sqlite_reopened(directory: Path) -> AsyncIterator[StateStore]:
    """Every read comes from a freshly opened file: what was written is what a restart finds."""
    yield ReopeningStore(directory / "broker-state.db")


class ReopeningStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    async def read(self) -> StoredState:
        async with SQLiteStateStore(self.path) as store:
            return await store.read()

    async def write(self, batch: StateBatch) -> None:
        async with SQLiteStateStore(self.path, durable=False) as store:
            await store.write(batch)

    async def close(self) -> None:
        pass


IMPLEMENTATIONS: list[StoreFactory] = [in_memory, sqlite_file, sqlite_reopened]

PRINCIPAL = Principal(
    id="device:1", kind="device", organization_id="org-1", mountpoint="org/ab/", attributes={"device_id": "1"}
)


def message(topic: str, payload: bytes = b"p", **fields: object) -> BrokerMessage:
    return BrokerMessage(topic, payload, received_at=1_700_000_000.25, **fields)  # type: ignore[arg-type]


def session(client_id: str = "c1", **fields: object) -> SessionRecord:
    values: dict[str, object] = {
        "mountpoint": "org/ab/",
        "client_id": client_id,
        "principal": PRINCIPAL,
        "expiry_interval": 3600,
        "disconnected_at": 1_700_000_100.5,
    }
    values.update(fields)
    return SessionRecord(**values)  # type: ignore[arg-type]


def held(store_id: int, client_id: str = "c1", **fields: object) -> HeldRecord:
    values: dict[str, object] = {
        "store_id": store_id,
        "session_key": ("org/ab/", client_id),
        "message": message(f"org/ab/t/{store_id}", qos=1),
        "qos": 1,
        "retain": False,
    }
    values.update(fields)
    return HeldRecord(**values)  # type: ignore[arg-type]


@pytest.fixture(params=IMPLEMENTATIONS, ids=lambda factory: factory.__name__)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StateStore]:
    factory: StoreFactory = request.param
    async with factory(tmp_path) as opened:
        yield opened


async def test_empty_store_reads_nothing(store: StateStore) -> None:
    state = await store.read()
    assert (state.retained, state.sessions, state.held) == ([], [], [])


async def test_retained_messages_round_trip_with_properties(store: StateStore) -> None:
    props = Properties(
        payload_format_indicator=1,
        message_expiry_interval=600,
        content_type="application/json",
        response_topic="org/ab/reply",
        correlation_data=b"\x00\x01",
        user_properties=[("k", "v"), ("k", "w")],
    )
    await store.write(
        StateBatch(retained={"org/ab/cfg": message("org/ab/cfg", b'{"a":1}', qos=1, retain=True, properties=props)})
    )
    await store.write(StateBatch(retained={"x": message("x", b"\x00\xff"), "y": message("y")}))
    await store.write(StateBatch(retained={"y": None}))
    retained = {m.topic: m for m in (await store.read()).retained}
    assert set(retained) == {"org/ab/cfg", "x"}
    cfg = retained["org/ab/cfg"]
    assert (cfg.payload, cfg.qos, cfg.retain, cfg.received_at) == (b'{"a":1}', 1, True, 1_700_000_000.25)
    assert cfg.properties == props
    assert retained["x"].payload == b"\x00\xff"
    assert retained["x"].properties is None


async def test_sessions_round_trip_with_everything_they_keep(store: StateStore) -> None:
    record = session(
        subscriptions=(
            SubscriptionRecord("org/ab/a/#", 2, True, True, 2, 17, None),
            SubscriptionRecord("org/ab/jobs", 1, share_group="workers"),
        ),
        inbound_qos2=(3, 9),
        will=Will("org/ab/will", b"bye", 1, True, Properties(will_delay_interval=30, content_type="text/plain")),
        will_at=1_700_000_130.5,
    )
    await store.write(StateBatch(sessions=[record, session("c2", disconnected_at=None)]))
    sessions = {s.client_id: s for s in (await store.read()).sessions}
    assert sessions["c1"] == record
    assert sessions["c2"].disconnected_at is None
    assert sessions["c2"].principal == PRINCIPAL


async def test_session_records_are_replaced(store: StateStore) -> None:
    await store.write(StateBatch(sessions=[session(expiry_interval=10)]))
    await store.write(StateBatch(sessions=[session(expiry_interval=20)]))
    assert [s.expiry_interval for s in (await store.read()).sessions] == [20]


async def test_held_messages_round_trip_in_order_and_are_updated_and_deleted(store: StateStore) -> None:
    await store.write(StateBatch(sessions=[session()]))
    shared = held(5, share_group="workers", share_filter="org/ab/jobs", identifiers=(1, 4))
    await store.write(StateBatch(held={7: held(7), 5: shared, 6: held(6, qos=2, packet_id=12)}))
    await store.write(StateBatch(held={6: held(6, qos=2, packet_id=12, released=True), 7: None}))
    state = await store.read()
    assert [h.store_id for h in state.held] == [5, 6]
    assert state.held[0] == shared
    assert (state.held[1].packet_id, state.held[1].released) == (12, True)


async def test_discarding_a_session_deletes_what_it_held_before_the_batch_goes_on(store: StateStore) -> None:
    await store.write(StateBatch(sessions=[session(), session("c2")], held={1: held(1), 2: held(2, "c2")}))
    # One batch: the old c1 goes with its message, a new c1 and its first message come.
    await store.write(
        StateBatch(discarded={("org/ab/", "c1")}, sessions=[session(expiry_interval=5)], held={3: held(3), 1: None})
    )
    state = await store.read()
    assert sorted((s.client_id, s.expiry_interval) for s in state.sessions) == [("c1", 5), ("c2", 3600)]
    assert [h.store_id for h in state.held] == [2, 3]


async def test_merged_batches_write_like_the_two_in_order(store: StateStore) -> None:
    first = StateBatch(sessions=[session()], held={1: held(1)}, retained={"r": message("r")})
    second = StateBatch(discarded={("org/ab/", "c1")}, retained={"r": None, "s": message("s")})
    await store.write(first.merge(second))
    state = await store.read()
    assert (state.sessions, state.held) == ([], [])
    assert [m.topic for m in state.retained] == ["s"]
