"""External broker mode: the parts of the composition root that build a RabbitMQ cluster in for the embedded broker.

Kept apart from :mod:`mqtthub.hub` so the embedded path reads as before; the hub calls these when
``MQTTHUB_BROKER=rabbitmq`` (see docs/scale-out.md).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from mqtthub.auth.broker_hooks import DatabaseAuthenticator
from mqtthub.auth.credentials import API_TOKEN_PREFIX
from mqtthub.auth.organizations import OrganizationCreated
from mqtthub.broker.hooks import ConnectInfo, MessageSink, Principal
from mqtthub.config import Settings
from mqtthub.db import Database
from mqtthub.errors import AuthenticationRefused
from mqtthub.models import Organization
from mqtthub.rabbitmq import RabbitBroker, RabbitConfig
from mqtthub.tenancy import namespace_prefix


def rabbit_broker(
    settings: Settings, database: Database, sink: MessageSink, authenticator: DatabaseAuthenticator
) -> RabbitBroker:
    """The RabbitMQ cluster of ``settings`` as the hub's broker, its ingest queues feeding ``sink``."""
    # Settings refuse broker=rabbitmq without both URLs.
    assert settings.rabbitmq_amqp_url is not None
    assert settings.rabbitmq_management_url is not None

    async def organizations() -> list[str]:
        async with database.session() as session:
            return list(await session.scalars(select(Organization.short_id)))

    async def resolve(vhost: str, username: str) -> Principal:
        # An API token logs in with itself as password too, so the hub can tell whose it is; a device logs in with
        # its id. Anything else is named by its login only (kicked by client id, not by principal).
        mountpoint = namespace_prefix(vhost)
        if username.startswith(API_TOKEN_PREFIX):
            info = ConnectInfo("", username, username.encode(), protocol_level=4, listener="rabbitmq", peer="")
            try:
                return await authenticator.authenticate(info)
            except AuthenticationRefused:
                pass
        elif "@" not in username:
            return Principal(id=f"device:{username}", kind="device", mountpoint=mountpoint)
        return Principal(id=f"login:{vhost}:{username}", kind="login", mountpoint=mountpoint)

    config = RabbitConfig(
        amqp_url=settings.rabbitmq_amqp_url,
        management_url=settings.rabbitmq_management_url,
        ingest_queue=settings.rabbitmq_ingest_queue,
        prefetch=settings.rabbitmq_prefetch,
        poll_interval=settings.rabbitmq_poll_interval,
    )
    return RabbitBroker(config, sink=sink, organizations=organizations, resolve=resolve)


def vhost_follower(broker: RabbitBroker) -> Callable[[OrganizationCreated], None]:
    """A change handler giving each new organization its vhost on the cluster."""
    return lambda change: broker.organization_added(change.short_id)
