"""An in-process stack for telemetry tests: real database, real broker with the real auth hooks, telemetry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from mqtthub.auth.broker_hooks import DatabaseAuthenticator, TopicAuthorizer
from mqtthub.broker import Broker, BrokerConfig, ListenerConfig
from mqtthub.config import Settings
from mqtthub.crypto import SecretBox
from mqtthub.db import Database
from mqtthub.db.migrate import upgrade
from mqtthub.realtime import RealtimeBus
from mqtthub.telemetry import TelemetryService
from mqtthub.telemetry.commands import CommandService
from tests.integration.telemetry.support import SeededDevice, seed_device


@dataclass
class Stack:
    """The running pieces and two seeded organizations."""

    database: Database
    telemetry: TelemetryService
    commands: CommandService
    broker: Broker
    bus: RealtimeBus
    port: int
    a: SeededDevice
    b: SeededDevice


@pytest.fixture
async def stack(database_url: str) -> AsyncIterator[Stack]:
    await upgrade(database_url)
    settings = Settings(_env_file=None, database_url=database_url, telemetry_retention_days=0)
    secrets = SecretBox("telemetry-test-key-" + "x" * 20)
    async with Database(database_url) as database:
        a = await seed_device(database, secrets, "orga1234", token="mqh_dev_" + "a" * 40)
        b = await seed_device(database, secrets, "orgb5678", token="mqh_dev_" + "b" * 40)
        bus = RealtimeBus()
        telemetry = TelemetryService(database, settings, realtime=bus)
        authenticator = DatabaseAuthenticator(database, secrets, settings)
        broker = Broker(
            BrokerConfig(listeners=(ListenerConfig(name="tcp", port=0),), sys_interval=0),
            authenticator=authenticator,
            authorizer=TopicAuthorizer(),
            sink=telemetry.sink,
            observer=telemetry.observer,
        )
        commands = CommandService(telemetry, broker)
        async with telemetry, broker, commands:
            yield Stack(database, telemetry, commands, broker, bus, broker.addresses["tcp"][1], a, b)
        await authenticator.settle()  # before the database closes
