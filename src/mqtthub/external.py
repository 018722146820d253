"""External broker mode: the parts of the composition root that build a RabbitMQ cluster in for the embedded broker.

Kept apart from :mod:`mqtthub.hub` so the embedded path reads as before; the hub calls these when
``MQTTHUB_BROKER=rabbitmq`` (see docs/scale-out.md).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from mqtthub.auth.broker_hooks import DatabaseAuthenticator
from mqtthub.auth.organizations import OrganizationCreated
from mqtthub.authbackend.common import AuthBackend
from mqtthub.broker.hooks import MessageSink, Principal
from mqtthub.config import Settings
from mqtthub.db import Database
from mqtthub.models import Organization
from mqtthub.rabbitmq import RabbitBroker, RabbitConfig
from mqtthub.rabbitmq.live import LiveRelay
from mqtthub.realtime import RealtimeBus
from mqtthub.tenancy import namespace_prefix


def rabbit_broker(
    settings: Settings,
    database: Database,
    sink: MessageSink,
    authenticator: DatabaseAuthenticator,
    backend: AuthBackend,
    live: RealtimeBus,
) -> RabbitBroker:
    """The RabbitMQ cluster of ``settings`` as the hub's broker, its ingest queues feeding ``sink``.

    ``live`` gets the live events the other hubs commit, and hands them this hub's (:mod:`mqtthub.rabbitmq.live`).
    """
    # Settings refuse broker=rabbitmq without both URLs.
    assert settings.rabbitmq_amqp_url is not None
    assert settings.rabbitmq_management_url is not None

    async def organizations() -> list[str]:
        async with database.session() as session:
            return list(await session.scalars(select(Organization.short_id)))

    async def resolve(vhost: str, username: str) -> Principal:
        # The auth backend's own answer for a user name (an API token, a device id, an administrator's e-mail);
        # anything it does not know is named by its login only (kicked by client id, never by principal).
        principal = await backend.principal_of(username, "", "")
        if principal is not None:
            return principal
        return Principal(id=f"login:{vhost}:{username}", kind="login", mountpoint=namespace_prefix(vhost))

    def forget(principal_id: str) -> None:
        authenticator.forget(principal_id)
        backend.principals.forget(principal_id)

    config = RabbitConfig(
        amqp_url=settings.rabbitmq_amqp_url,
        management_url=settings.rabbitmq_management_url,
        ingest_queue=settings.rabbitmq_ingest_queue,
        prefetch=settings.rabbitmq_prefetch,
        poll_interval=settings.rabbitmq_poll_interval,
    )
    relay = LiveRelay(live.receive)
    live.relay = relay
    return RabbitBroker(config, sink=sink, organizations=organizations, resolve=resolve, forget=forget, relay=relay)


def vhost_follower(broker: RabbitBroker) -> Callable[[OrganizationCreated], None]:
    """A change handler giving each new organization its vhost on the cluster."""
    return lambda change: broker.organization_added(change.short_id)
