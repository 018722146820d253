"""The messaging service on a real SQLite database, with the in-memory broker fake at the broker seam."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from mqtthub.auth.live import OrganizationDeleted
from mqtthub.broker.hooks import BrokerMessage
from mqtthub.config import Settings
from mqtthub.db import Database
from mqtthub.db.changes import record
from mqtthub.db.migrate import upgrade
from mqtthub.errors import NotFoundError, StateError, UnavailableError
from mqtthub.messaging import history
from mqtthub.messaging.namespace import OrgScope
from mqtthub.messaging.service import MessagingService
from mqtthub.models import HistoryMessage, MessageSubscription, Organization
from tests.support.commits import commits_refused
from tests.unit.messaging.fakes import FakeBroker


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """A migrated SQLite or PostgreSQL database with two organizations."""
    await upgrade(database_url)
    async with Database(database_url) as database:
        async with database.session() as session:
            session.add_all(
                [
                    Organization(id="org-a", name="A", short_id="aaaaaa"),
                    Organization(id="org-b", name="B", short_id="bbbbbb"),
                ]
            )
        yield database


A = OrgScope.of("org-a", "aaaaaa")
B = OrgScope.of("org-b", "bbbbbb")


def settings(**values: object) -> Settings:
    return Settings(**values)  # type: ignore[arg-type]


async def subscribe(service: MessagingService, scope: OrgScope, topic_filter: str, qos: int = 0) -> bool:
    async with service.database.session() as session:
        return await service.subscribe(session, scope, topic_filter, qos)


async def page(service: MessagingService, scope: OrgScope, **query: object) -> history.MessagePage:
    assert await service.recorder.flushed()
    async with service.database.session() as session:
        return await history.page(session, scope.organization_id, **query)  # type: ignore[arg-type]


async def test_recorded_messages_are_scoped_stripped_and_newest_first(database: Database) -> None:
    broker = FakeBroker()
    async with MessagingService(settings(), database, broker) as service:
        assert await subscribe(service, A, "factory/+/+/temperature", qos=1)
        assert await subscribe(service, B, "#")
        await service.publish(A, "factory/line1/press1/temperature", b"45.2", qos=1, retain=False)
        await service.publish(A, "factory/line1/press1/pressure", b"3", qos=0, retain=False)
        await service.publish(A, "factory/line2/press7/temperature", b"\xff\x00", qos=0, retain=True)
        assert broker.published[0].topic == "org/aaaaaa/factory/line1/press1/temperature"
        found = await page(service, A)
        assert found.total == 2
        assert [row.topic for row in found.rows] == [
            "factory/line2/press7/temperature",
            "factory/line1/press1/temperature",
        ]
        assert found.rows[0].payload == b"\xff\x00"
        assert found.rows[0].retain is True
        assert (await page(service, B)).total == 0  # B records '#' of its own namespace only
        assert service.filters("org-a") == ["factory/+/+/temperature"]
        assert service.subscription_count() == 2
        health = await service.health()
        assert health == {
            "mqtt_connected": True,
            "message_count": 2,
            "active_subscriptions": 2,
            "websocket_connections": 0,
        }


async def test_overlapping_filters_record_a_message_once(database: Database) -> None:
    broker = FakeBroker()
    async with MessagingService(settings(), database, broker) as service:
        await subscribe(service, A, "a/#")
        await subscribe(service, A, "a/+")
        await subscribe(service, A, "a/b")
        await service.publish(A, "a/b", b"once", qos=0, retain=False)
        await service.publish(A, "a/b", b"twice", qos=0, retain=False)
        assert [row.payload for row in (await page(service, A)).rows] == [b"twice", b"once"]


async def test_a_message_of_overlapping_recorded_and_live_filters_arrives_once(database: Database) -> None:
    broker = FakeBroker()
    async with MessagingService(settings(), database, broker) as service:
        await subscribe(service, A, "m/#")
        follower = service.live.subscribe("org-a", None)
        own = service.live.subscribe("org-a", ["m/+", "m/1"])
        theirs = service.live.subscribe("org-b", None)
        service.follow(A, "m/+")
        service.follow(A, "m/1")
        await service.publish(A, "m/1", b"x", qos=0, retain=False)
        assert (follower.qsize(), own.qsize(), theirs.qsize()) == (1, 1, 0)
        recorded = json.loads((await follower.get()).text)
        assert json.loads((await own.get()).text)["id"] == recorded["id"]  # the same message: recorded once
        assert (await page(service, A)).total == 1
        assert len(broker.subscriptions) == 3


async def test_subscribing_again_only_changes_qos(database: Database) -> None:
    broker = FakeBroker()
    async with MessagingService(settings(), database, broker) as service:
        assert await subscribe(service, A, "x/#", qos=0)
        assert not await subscribe(service, A, "x/#", qos=2)
        assert len(broker.subscriptions) == 1
        async with database.session() as session:
            assert await session.scalar(select(MessageSubscription.qos)) == 2


async def test_unsubscribe_stops_recording(database: Database) -> None:
    broker = FakeBroker()
    async with MessagingService(settings(), database, broker) as service:
        await subscribe(service, A, "t")
        async with database.session() as session:
            await service.unsubscribe(session, A, "t")
        assert broker.subscriptions == []
        await service.publish(A, "t", b"x", qos=0, retain=False)
        assert (await page(service, A)).total == 0
        async with database.session() as session:
            with pytest.raises(NotFoundError):
                await service.unsubscribe(session, A, "t")
            with pytest.raises(NotFoundError):
                await service.unsubscribe(session, B, "t")


async def test_filters_are_recorded_again_after_a_restart(database: Database) -> None:
    broker = FakeBroker()
    async with MessagingService(settings(), database, broker) as service:
        await subscribe(service, A, "kept/#")
    assert broker.subscriptions == []  # closing unsubscribes from the broker
    async with MessagingService(settings(), database, broker) as service:
        assert service.filters("org-a") == ["kept/#"]
        await service.publish(A, "kept/1", b"again", qos=0, retain=False)
        assert (await page(service, A)).total == 1


async def test_unavailable_broker(database: Database) -> None:
    broker = FakeBroker()
    async with MessagingService(settings(), database, broker) as service:
        broker.running = False
        assert not service.broker_connected
        with pytest.raises(UnavailableError):
            await service.publish(A, "t", b"x", qos=0, retain=False)
        with pytest.raises(UnavailableError):
            await subscribe(service, A, "t")
        with pytest.raises(UnavailableError):
            service.follow(A, "t")
        broker.running = True
        assert service.broker_connected


async def test_history_is_bounded_by_count_and_age(database: Database) -> None:
    broker = FakeBroker()
    async with MessagingService(
        settings(max_history_size=3, message_retention_hours=1), database, broker, prune_interval=3600
    ) as service:
        await subscribe(service, A, "#")
        await subscribe(service, B, "#")
        for index in range(5):
            await service.publish(A, f"n/{index}", str(index).encode(), qos=0, retain=False)
        await service.publish(B, "b", b"b", qos=0, retain=False)
        assert await service.recorder.flushed()
        async with database.session() as session:
            await session.execute(
                update(HistoryMessage)
                .where(HistoryMessage.organization_id == "org-b")
                .values(received_at=datetime.now(UTC) - timedelta(hours=2))
            )
        await service.prune()
        kept = await page(service, A)
        assert [row.topic for row in kept.rows] == ["n/4", "n/3", "n/2"]
        assert (await page(service, B)).total == 0


async def test_a_busy_history_is_pruned_before_the_interval(database: Database) -> None:
    broker = FakeBroker()
    service = MessagingService(settings(max_history_size=4), database, broker, prune_interval=3600)
    async with service:
        await subscribe(service, A, "#")
        for index in range(10):
            await service.publish(A, f"busy/{index}", b"x", qos=0, retain=False)
        for _ in range(600):
            if (await page(service, A)).total <= 4:
                break
            await asyncio.sleep(0.05)
        kept = await page(service, A)
        assert [row.topic for row in kept.rows] == ["busy/9", "busy/8", "busy/7", "busy/6"]


async def test_queries_by_filter_time_range_permissions_and_offset(database: Database) -> None:
    broker = FakeBroker()
    async with MessagingService(settings(), database, broker) as service:
        await subscribe(service, A, "#")
        for topic in ("s/1/t", "s/2/t", "s/2/h", "other", "s_x/1/t"):
            await service.publish(A, topic, topic.encode(), qos=0, retain=False)
        assert [r.topic for r in (await page(service, A, topic="s/+/t")).rows] == ["s/2/t", "s/1/t"]
        assert (await page(service, A, topic="s/#")).total == 3  # '_' of 's_x' is no LIKE wildcard
        assert (await page(service, A, topic="other")).total == 1
        assert (await page(service, A, allowed=["s/2/#"])).total == 2
        assert (await page(service, A, topic="s/#", allowed=["s/+/t"])).total == 2
        second = await page(service, A, limit=2, offset=1)
        assert [r.topic for r in second.rows] == ["other", "s/2/h"]
        assert second.total == 5
        future = datetime.now(UTC) + timedelta(minutes=1)
        assert (await page(service, A, since=future)).total == 0
        assert (await page(service, A, until=future)).total == 5
        async with database.session() as session:
            topics = await history.topics(session, "org-a", allowed=["s/#"])
            assert {t.topic for t in topics} == {"s/1/t", "s/2/t", "s/2/h"}
            assert all(t.count == 1 and t.last_at.tzinfo is not None for t in topics)
            assert await session.scalar(select(func.count()).select_from(HistoryMessage)) == 5


async def test_live_listeners_get_recorded_and_own_filter_messages(database: Database) -> None:
    broker = FakeBroker()
    async with MessagingService(settings(), database, broker) as service:
        await subscribe(service, A, "rec/#")
        follower = service.live.subscribe("org-a", None)
        await service.publish(A, "rec/1", b"21.5", qos=1, retain=False)
        message = json.loads((await follower.get()).text)
        assert message["type"] == "message"
        assert message["topic"] == "rec/1"
        assert message["payload"] == "21.5"
        assert message["payload_encoding"] == "utf-8"
        assert message["qos"] == 1
        assert message["id"]
        own = service.live.subscribe("org-a", ["live/+"])
        service.follow(A, "live/+")
        await service.publish(A, "live/x", b"\x80", qos=0, retain=False)
        assert follower.qsize() == 0  # not recorded: not in the feed
        live = json.loads((await own.get()).text)
        assert (live["topic"], live["payload"], live["payload_encoding"], live["id"]) == (
            "live/x",
            "gA==",
            "base64",
            None,
        )
        service.unfollow(A, "live/+")
        await service.publish(A, "live/x", b"gone", qos=0, retain=False)
        assert own.qsize() == 0
        assert (await page(service, A)).total == 1  # live-only filters are not recorded


async def test_service_starts_once(database: Database) -> None:
    service = MessagingService(settings(), database, FakeBroker())
    async with service:
        with pytest.raises(StateError):
            await service.__aenter__()
    with pytest.raises(StateError):
        await service.__aenter__()


async def test_a_bad_row_does_not_cost_its_batch(database: Database) -> None:
    broker = FakeBroker()
    async with MessagingService(settings(), database, broker) as service:
        await subscribe(service, A, "#")
        # An organization deleted a moment ago: the service still records its filter, its rows cannot be written.
        ghost = OrgScope.of("org-c", "cccccc")
        async with database.session() as session:
            session.add(Organization(id="org-c", name="C", short_id="cccccc"))
        async with database.session() as session:
            await service.subscribe(session, ghost, "x", 0)
        async with database.session() as session:
            await session.delete(await session.get(Organization, "org-c"))
        broker.route(BrokerMessage("org/cccccc/x", b"lost", received_at=1.0))
        await service.publish(A, "kept", b"kept", qos=0, retain=False)
        assert (await page(service, A)).total == 1
        assert service.recorder.failed == 1
        assert service.recorder.recorded == 1


async def test_filters_reach_the_broker_only_once_committed(database: Database) -> None:
    broker = FakeBroker()
    async with MessagingService(settings(), database, broker) as service:
        async with commits_refused(database, "message_subscriptions"):
            with pytest.raises(IntegrityError):
                await subscribe(service, A, "refused/#")
        assert broker.subscriptions == []
        assert service.filters("org-a") == []

        assert await subscribe(service, A, "kept/#")
        async with commits_refused(database, "message_subscriptions"):
            with pytest.raises(IntegrityError):
                async with database.session() as session:
                    await service.unsubscribe(session, A, "kept/#")
        assert service.filters("org-a") == ["kept/#"]
        await service.publish(A, "kept/1", b"still recorded", qos=0, retain=False)
        assert [row.payload for row in (await page(service, A)).rows] == [b"still recorded"]


async def test_a_deleted_organization_records_nothing_more(database: Database) -> None:
    broker = FakeBroker()
    async with MessagingService(settings(), database, broker) as service:
        await subscribe(service, A, "#")
        await subscribe(service, B, "#")
        async with database.session() as session:
            organization = await session.get(Organization, "org-b")
            assert organization is not None
            await session.delete(organization)
            record(session, OrganizationDeleted("org-b"))
        assert service.filters("org-b") == []
        assert [subscription.topic_filter for subscription in broker.subscriptions] == ["org/aaaaaa/#"]
