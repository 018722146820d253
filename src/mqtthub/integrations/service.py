"""The integration service: one connector per configured product, event dispatch, and stats.

Built by the hub as ``IntegrationService(database, secrets, settings, broker)`` and
entered with ``async with``. Configuration changes are applied once they are committed:
the API records an :class:`~mqtthub.integrations.repository.IntegrationConfigChanged` on
its session, and after the commit the service's reload loop reads the committed
configuration again and brings the product's connector in line with it (a changed
connection means a new connection, the old one closed first; changed subscriptions only
resubscribe). A deleted organization stops its products' connectors the same way. Nothing
needs a restart, and a change that is rolled back never touches a running connection.
The reload loop and the statistics writer run in the service's
:class:`~mqtthub.background.BackgroundTasks`.

For each message whose topic some subscription matches: the event name is read from the
payload field named by the product's ``event_field`` (default ``event``), in an expression
worker, so that no payload is parsed on the event loop; every enabled subscription whose topic
matches and whose name equals the event name runs its actions in order. A failing action
is logged (and stored in the failure log) and the next action still runs. Counters and
the failure log are written in batches (:mod:`mqtthub.integrations.stats`) and survive restarts.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from types import TracebackType

import httpx

from mqtthub.auth.live import OrganizationDeleted
from mqtthub.background import BackgroundTasks, ServiceState
from mqtthub.broker.episodes import EpisodeLog
from mqtthub.config import Settings
from mqtthub.crypto import SecretBox
from mqtthub.db import Database
from mqtthub.errors import StateError, ValidationFailedError
from mqtthub.integrations.action_specs import ActionSpec, DomainAction, HttpAction, WebhookAction
from mqtthub.integrations.actions import ActionError, ActionRunner, EventContext, LocalPublisher
from mqtthub.integrations.connector import Connector, InboundMessage
from mqtthub.integrations.expressions import ExpressionError, ExpressionPool, Route, Routed
from mqtthub.integrations.lease import ConnectorLeases
from mqtthub.integrations.outbound import OutboundFence
from mqtthub.integrations.repository import IntegrationConfigChanged
from mqtthub.integrations.runtime import (
    ProductRuntime,
    configuration_versions,
    configured_products,
    instance_id,
    load_runtime,
)
from mqtthub.integrations.stats import StatsRecorder
from mqtthub.integrations.status import ConnectionStatus
from mqtthub.integrations.templates import ExpressionLimits
from mqtthub.mqtt.topics import topic_matches

logger = logging.getLogger(__name__)
episodes = EpisodeLog()
"""Failures that repeat per message are logged once per episode (see :mod:`mqtthub.broker.episodes`)."""


@dataclass
class _Outcome:
    subscription_id: str
    executed: int = 0
    failures: list[tuple[int, str, str]] = field(default_factory=list)


class _Running:
    """A product's connector, the runtime it dispatches with, and its status (kept across reconnections)."""

    def __init__(self, runtime: ProductRuntime, status: ConnectionStatus) -> None:
        self.runtime = runtime
        self.status = status
        self.connector: Connector | None = None


class IntegrationService:
    """Runs every product's connector and the actions its messages trigger.

    Args:
        database: The hub's database (configurations, counters, failure log); the service follows the
            changes committed on it.
        secrets: Decrypts stored broker passwords and keys.
        settings: Reconnect timings, SMTP, domain-actions URL, instance id.
        broker: The embedded broker, for ``republish`` to ``local``; None when not running.
        stats_interval: Seconds between writes of the counters and the failure log.
        reload_retry: Seconds before a connector whose configuration could not be read is reloaded again.
    """

    def __init__(
        self,
        database: Database,
        secrets: SecretBox,
        settings: Settings,
        broker: LocalPublisher | None = None,
        *,
        stats_interval: float = 0.5,
        reload_retry: float = 5.0,
    ) -> None:
        self.database = database
        self.secrets = secrets
        self.settings = settings
        self._broker = broker
        self._running: dict[str, _Running] = {}
        self._http: httpx.AsyncClient | None = None
        self._runner: ActionRunner | None = None
        self.state = ServiceState.CREATED
        self.tasks = BackgroundTasks("integrations")
        """The service's background loops (their crashes are counted in ``/metrics``)."""
        self._stats = StatsRecorder(database)
        self._stats_interval = stats_interval
        self._reload_retry = reload_retry
        self._reloads: dict[str, None] = {}
        self._failing_reloads: set[str] = set()
        """Products whose last reload failed (their traceback has been logged once)."""
        """Products whose committed configuration the connector must catch up with, oldest change first."""
        self._reload_wanted = asyncio.Event()
        self._leases: ConnectorLeases | None = None
        """Set when several hubs share the database (external broker on PostgreSQL): see :mod:`.lease`."""
        self._standby: set[str] = set()
        """Configured products whose connector another hub runs (it holds their lease)."""
        self._versions: dict[str, tuple[object, ...]] = {}
        """The configuration versions the running connectors were last checked against."""
        self.messages_received = 0
        """Messages received from every connector since the hub started."""
        self.action_results: Counter[tuple[str, str]] = Counter()
        """Actions run since the hub started, by (action type, ``executed`` / ``skipped`` / ``failed``)."""
        self.fence = OutboundFence(settings.outbound_allow)
        """Where webhooks, HTTP calls, e-mail and remote brokers may connect (``MQTTHUB_OUTBOUND_ALLOW``)."""
        self._expressions = ExpressionPool(
            workers=settings.integration_expression_workers,
            timeout=settings.integration_expression_timeout,
            limits=ExpressionLimits(max_length=settings.integration_expression_max_length),
        )

    async def __aenter__(self) -> IntegrationService:
        if self.state is not ServiceState.CREATED:
            raise StateError(f"the integration service can be started only once (it is {self.state.value})")
        self.state = ServiceState.RUNNING
        try:
            await self._open()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        logger.info("integrations: %d connector(s) started", len(self._running))
        return self

    async def _open(self) -> None:
        self._http = httpx.AsyncClient(transport=self.fence.http_transport(), follow_redirects=True, max_redirects=5)
        await self._expressions.__aenter__()
        self._runner = ActionRunner(
            self.database, self.settings, self._http, self._broker, self._expressions, self.fence
        )
        if self.settings.broker != "embedded" and self.database.dialect == "postgresql":
            self._leases = ConnectorLeases(self.database, instance_id(self.settings))
        await self.tasks.__aenter__()
        self.tasks.loop("stats-flush", partial(self._stats.run, self._stats_interval))
        # Followed before the configurations are read, so no change committed meanwhile is missed.
        self.database.changes.subscribe(IntegrationConfigChanged, self._config_changed)
        self.database.changes.subscribe(OrganizationDeleted, self._organization_deleted)
        if self.settings.integrations_enabled:
            async with self.database.session() as session:
                for product_id in await configured_products(session):
                    runtime = await load_runtime(session, product_id, self.secrets, self.settings)
                    if runtime is not None:
                        await self._start(runtime, None)
        # Started last: the connectors above are the only ones it can find, so no product gets two.
        self.tasks.loop("reload", self._reload_loop)
        if self._leases is not None and self.settings.integrations_enabled:
            self.tasks.loop("lease", self._lease_loop)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.state is ServiceState.CLOSED:
            return
        self.state = ServiceState.CLOSING
        await self.tasks.close()
        for running in list(self._running.values()):
            if running.connector is not None:
                await running.connector.aclose()
        self._running.clear()
        if self._leases is not None:
            await self._leases.__aexit__(None, None, None)
        await self._stats.flush()
        if self._http is not None:
            await self._http.aclose()
        await self._expressions.__aexit__(None, None, None)
        self.state = ServiceState.CLOSED

    # --- control ---------------------------------------------------------------------------------------

    def _config_changed(self, change: IntegrationConfigChanged) -> None:
        self._reload_later(change.product_id)

    def _organization_deleted(self, change: OrganizationDeleted) -> None:
        for product_id, running in self._running.items():
            if running.runtime.organization_id == change.organization_id:
                self._reload_later(product_id)

    def _reload_later(self, product_id: str) -> None:
        """Called right after a commit: the reload loop brings the product's connector in line with it."""
        if self.state is not ServiceState.RUNNING or not self.settings.integrations_enabled:
            return
        self._reloads[product_id] = None
        self._reload_wanted.set()

    async def _reload_loop(self) -> None:
        while True:
            await self._reload_wanted.wait()
            self._reload_wanted.clear()
            while self._reloads:
                product_id = next(iter(self._reloads))
                del self._reloads[product_id]
                try:
                    await self._reload(product_id)
                except Exception as error:  # the database is down, most likely: the connector runs on as it was
                    self._reload_failed(product_id, error)
                    self._reloads.setdefault(product_id, None)
                    await asyncio.sleep(self._reload_retry)
                else:
                    if product_id in self._failing_reloads:
                        self._failing_reloads.discard(product_id)
                        logger.info("integrations: product %s reloaded after failing", product_id)

    def _reload_failed(self, product_id: str, error: Exception) -> None:
        """Log a failed reload: the traceback the first time, one line on each retry of the same product."""
        if product_id in self._failing_reloads:
            logger.warning(
                "integrations: still cannot reload product %s (%s: %s); trying again in %g s",
                *(product_id, type(error).__name__, error, self._reload_retry),
            )
            return
        self._failing_reloads.add(product_id)
        logger.error(
            "integrations: cannot reload product %s; trying again in %g s",
            *(product_id, self._reload_retry),
            exc_info=error,
        )

    async def _reload(self, product_id: str) -> None:
        """Make the product's connector run its committed configuration (none: stop it)."""
        async with self.database.session() as session:
            runtime = await load_runtime(session, product_id, self.secrets, self.settings)
        running = self._running.get(product_id)
        if runtime is None:
            self._standby.discard(product_id)
            if running is not None:
                await self._stop(product_id, running)
            elif self._leases is not None:
                await self._leases.release(product_id)
            return
        if running is None:
            await self._start(runtime, None)
            return
        if running.runtime.options != runtime.options or running.connector is None:
            if running.connector is not None:
                await running.connector.aclose()
            await self._start(runtime, running.status)
            return
        running.runtime = runtime
        running.connector.set_topics(runtime.topic_filters())

    async def _stop(self, product_id: str, running: _Running) -> None:
        del self._running[product_id]
        if running.connector is not None:
            await running.connector.aclose()
        if self._leases is not None:
            await self._leases.release(product_id)

    async def _lease_loop(self) -> None:
        """Stop the connectors whose leases were lost; take the free leases of products run nowhere.

        Every product configured in the shared database but not run here is a candidate, also one
        configured through another hub (this hub had no event of it). A running connector whose
        configuration was changed through another hub is reloaded.
        """
        assert self._leases is not None
        while True:
            await asyncio.sleep(self.settings.integration_lease_interval)
            for product_id in await self._leases.check():
                running = self._running.get(product_id)
                if running is not None:
                    await self._stop(product_id, running)
            try:
                async with self.database.session() as session:
                    versions = await configuration_versions(session)
                for product_id in self._running.keys() - versions.keys():
                    self._reload_later(product_id)
                for product_id in self._running.keys() & versions.keys():
                    if self._versions.get(product_id) != versions[product_id]:
                        self._reload_later(product_id)
                self._versions = versions
                self._standby = versions.keys() - self._running.keys()
                for product_id in sorted(self._standby):
                    if await self._leases.acquire(product_id):
                        self._reload_later(product_id)
            except Exception as exc:  # the database is down: no hub can take a lease, try again later
                logger.warning("integrations: cannot take connector leases: %s", exc)

    async def holder(self, product_id: str) -> str | None:
        """The hub running the product's connector: this one, another sharing the database, or None."""
        if self._leases is not None:
            return await self._leases.holder(product_id)
        return instance_id(self.settings) if product_id in self._running else None

    def status(self, product_id: str) -> ConnectionStatus | None:
        """The live status of a product's connector, or None when it has none."""
        running = self._running.get(product_id)
        return running.status if running is not None else None

    def connector_states(self) -> dict[str, int]:
        """How many connectors are ``connected``, ``disconnected``, or down with an ``error``."""
        states = {"connected": 0, "disconnected": 0, "error": 0, "standby": len(self._standby)}
        for running in self._running.values():
            status = running.status
            states["connected" if status.connected else "error" if status.connection_error else "disconnected"] += 1
        return states

    def reconnect(self, product_id: str) -> bool:
        """Force a product's connector to reconnect; False when it has none."""
        running = self._running.get(product_id)
        if running is None or running.connector is None:
            return False
        running.connector.reconnect()
        return True

    async def check_actions(self, actions: list[ActionSpec]) -> None:
        """Refuse actions this hub cannot run, when they are saved (the API and the console call this).

        A domain action (any type that is not built in) needs ``MQTTHUB_INTEGRATION_DOMAIN_ACTIONS_URL``. A
        webhook or HTTP action's URL must name a host the outbound policy allows; only a literal host can be
        judged now, a host filled in by a template is checked when the action runs.

        Raises:
            ValidationFailedError: naming the offending field (``actions[i].type`` or ``actions[i].url``).
        """
        for index, action in enumerate(actions):
            if isinstance(action, DomainAction) and not self.settings.integration_domain_actions_url:
                raise ValidationFailedError(
                    f"unknown action type {action.type!r}: domain actions need MQTTHUB_INTEGRATION_DOMAIN_ACTIONS_URL",
                    field=f"actions[{index}].type",
                )
            if isinstance(action, WebhookAction | HttpAction):
                authority = action.url.split("://", 1)[-1].split("/", 1)[0]
                if "{" not in authority:
                    await self.fence.check(httpx.URL(action.url).host, field=f"actions[{index}].url")

    async def _start(self, runtime: ProductRuntime, status: ConnectionStatus | None) -> None:
        if self._leases is not None and not await self._leases.acquire(runtime.product_id):
            self._standby.add(runtime.product_id)
            return
        self._standby.discard(runtime.product_id)
        if status is None:
            status = ConnectionStatus(
                product_id=runtime.product_id,
                client_id=runtime.options.client_id,
                messages_received=runtime.messages_received,
                last_message_at=runtime.last_message_at,
            )
        status.client_id = runtime.options.client_id
        status.hub = instance_id(self.settings)
        running = _Running(runtime, status)
        self._running[runtime.product_id] = running

        async def handle(message: InboundMessage) -> None:
            await self._dispatch(running, message)

        connector = Connector(
            runtime.options,
            topics=runtime.topic_filters(),
            handler=handle,
            status=status,
            reconnect_min=self.settings.integration_reconnect_min,
            reconnect_max=self.settings.integration_reconnect_max,
            name=f"integration-{runtime.product_id[:8]}",
            fence=self.fence,
        )
        running.connector = await connector.__aenter__()

    # --- dispatch --------------------------------------------------------------------------------------

    async def _route(self, runtime: ProductRuntime, message: InboundMessage) -> Routed | None:
        """The message's event name, read in an expression worker (None when that fails: no action runs)."""
        try:
            return await self._expressions.route(
                Route(message.payload.decode("utf-8", errors="replace"), runtime.event_field)
            )
        except ExpressionError as exc:
            episodes(
                logger,
                logging.WARNING,
                ("event", runtime.product_id),
                "product %s: cannot read the event of a message on %.200s: %s",
                runtime.product_id,
                message.topic,
                exc,
            )
            return None

    async def _dispatch(self, running: _Running, message: InboundMessage) -> None:
        runtime = running.runtime
        assert self._runner is not None
        self.messages_received += 1
        outcomes: list[_Outcome] = []
        candidates = [item for item in runtime.subscriptions if topic_matches(item.topic, message.topic)]
        routed = await self._route(runtime, message) if candidates else None
        for subscription in candidates:
            if routed is None or routed.event != subscription.name:
                continue
            outcome = _Outcome(subscription.id)
            outcomes.append(outcome)
            context = EventContext(
                product_id=runtime.product_id,
                organization_id=runtime.organization_id,
                organization_short_id=runtime.organization_short_id,
                subscription_id=subscription.id,
                subscription_name=subscription.name,
                topic=message.topic,
                payload=message.payload,
                qos=message.qos,
                retain=message.retain,
                received_at=message.received_at,
                event_json=message.payload if routed.wrapped is None else routed.wrapped.encode(),
            )
            connector = running.connector
            remote = connector.publish if connector is not None else None
            for index, action in enumerate(subscription.actions):
                try:
                    executed = await self._runner.run(action, context, remote)
                except ActionError as exc:
                    self.action_results[(action.type, "failed")] += 1
                    episodes(
                        logger,
                        logging.WARNING,
                        ("action", subscription.id, index),
                        "subscription %s: action %d (%s) failed: %s",
                        subscription.id,
                        index,
                        action.type,
                        exc,
                    )
                    outcome.failures.append((index, action.type, str(exc)))
                    continue
                self.action_results[(action.type, "executed" if executed else "skipped")] += 1
                if executed:
                    outcome.executed += 1
        self._stats.message(runtime.product_id, message.received_at)
        for outcome in outcomes:
            self._stats.matched(outcome.subscription_id, message.received_at, outcome.executed, len(outcome.failures))
            for index, kind, error in outcome.failures:
                self._stats.failure(runtime.product_id, outcome.subscription_id, index, kind, error, message.topic)
