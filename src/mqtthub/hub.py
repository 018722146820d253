"""The composition root: builds every component from one ``Settings`` and tears them down in reverse.

Start-up order: secret key → database (migrations, first-run account) → certificate
authority → telemetry (ingest writer, Socket.IO gateway; before the broker, whose sink and
observer it is) → broker (embedded: listeners bound; or external) → commands → messaging →
integrations (one connector per configured product) → HTTP API (socket bound, so every real
port is known before serving). Each component gets what it uses as constructor arguments, so
nothing is handed over after construction: telemetry needs no broker (what publishes commands
and broadcasts is the command service, built after the broker), and every service after the
broker gets it as a :class:`~mqtthub.broker.handle.BrokerHandle`, so an external broker can
stand in for the embedded one. Stopping runs in reverse: telemetry stops after the broker, so
no accepted message finds its writer closed. Each service runs its loops in its own
:class:`~mqtthub.background.BackgroundTasks`, and so do the hub's own (revalidation, memory
release, rules reload) in :meth:`Hub.run`, beside the HTTP servers: a crashed loop is logged and
runs again after a backoff, a crashed HTTP server ends the hub. Stopping cancels and awaits them.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import logging
import socket
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from types import TracebackType

import uvicorn
from fastapi import FastAPI

from mqtthub import external
from mqtthub.api.app import create_app
from mqtthub.auth.attempts import LoginGuard
from mqtthub.auth.bootstrap import FirstRunCredentials, bootstrap_first_run
from mqtthub.auth.broker_hooks import DatabaseAuthenticator, TopicAuthorizer
from mqtthub.auth.ca import CA_KEY_NAME, CertificateAuthority
from mqtthub.auth.credential_cache import CredentialCache
from mqtthub.auth.live import AccessEnded, DeviceChanged, apply_access_ended
from mqtthub.auth.operator_rules import OperatorRules, RulesFile, invalidate_changed
from mqtthub.auth.organizations import OrganizationCreated
from mqtthub.auth.passwords import PasswordWorkers
from mqtthub.auth.revalidation import CredentialRevalidator
from mqtthub.authbackend.common import AuthBackend
from mqtthub.authbackend.guard import BackendGuard
from mqtthub.authbackend.principals import PrincipalDirectory
from mqtthub.authbackend.server import AuthBackendServer
from mqtthub.background import BackgroundTasks
from mqtthub.broker import Broker, BrokerConfig, BrokerHandle, ListenerConfig
from mqtthub.broker.config import ListenerKind
from mqtthub.brokerstate import SQLiteStateStore
from mqtthub.config import Settings
from mqtthub.crypto import SECRET_FILE_NAME, SecretBox, load_or_create_secret_key
from mqtthub.db import Database
from mqtthub.db.changes import ChangeBus
from mqtthub.db.location import DATABASE_ERRORS, check_location, sqlite_file, unavailable
from mqtthub.db.migrate import upgrade
from mqtthub.errors import StateError
from mqtthub.filemodes import SQLITE_COMPANIONS, make_private
from mqtthub.integrations.service import IntegrationService
from mqtthub.memory import MemoryReleaser
from mqtthub.messaging.service import MessagingService
from mqtthub.messaging.shared import SharedRecording
from mqtthub.observability.auth_checks import AuthChecks
from mqtthub.observability.collector import hub_registry
from mqtthub.observability.endpoint import metrics_app, metrics_endpoint
from mqtthub.observability.http import HttpMetrics
from mqtthub.realtime import RealtimeBus
from mqtthub.realtime.access import StreamAuthenticator
from mqtthub.realtime.socketio import SocketIOGateway
from mqtthub.telemetry import TelemetryService
from mqtthub.telemetry.commands import CommandService
from mqtthub.web.state import AppState

logger = logging.getLogger(__name__)

BROKER_STATE_FILE = "broker-state.db"
"""Retained messages and persistent sessions of the embedded broker, in ``data_dir``."""


class HubState(enum.Enum):
    """Life cycle of a :class:`Hub`."""

    CREATED = "created"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the hub owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


_LISTENER_LABELS = {
    "tcp": ("MQTT", "mqtt"),
    "tls": ("MQTT TLS", "mqtts"),
    "ws": ("MQTT WebSocket", "ws"),
    "wss": ("MQTT WSS", "wss"),
}


def broker_config(settings: Settings, client_ca: Path | None = None) -> BrokerConfig:
    """The embedded broker's listeners and limits, from the hub's settings.

    TLS and WSS listeners exist only when a server certificate is configured; they ask for
    client certificates signed by ``client_ca`` (the hub's CA) unless ``tls_client_certs`` is ``none``.
    """
    listeners = []
    if settings.mqtt_enabled:
        listeners.append(ListenerConfig(name="tcp", kind="tcp", host=settings.host, port=settings.mqtt_port))
    if settings.ws_enabled:
        listeners.append(ListenerConfig(name="ws", kind="ws", host=settings.host, port=settings.ws_port))
    if settings.tls_cert_file is not None and settings.tls_key_file is not None:
        secure: tuple[tuple[ListenerKind, int], ...] = (("tls", settings.mqtts_port), ("wss", settings.wss_port))
        for kind, port in secure:
            listeners.append(
                ListenerConfig(
                    name=kind,
                    kind=kind,
                    host=settings.host,
                    port=port,
                    certfile=settings.tls_cert_file,
                    keyfile=settings.tls_key_file,
                    cafile=client_ca if settings.tls_client_certs != "none" else None,
                    require_client_cert=client_ca is not None and settings.tls_client_certs == "required",
                )
            )
    return BrokerConfig(
        listeners=tuple(listeners),
        max_connections=settings.max_connections,
        max_connection_rate=settings.max_connection_rate,
        max_packet_size=settings.max_packet_size,
        receive_maximum=settings.max_inflight,
        max_inflight=settings.max_inflight,
        max_queued_messages=settings.max_queued_messages,
        max_keepalive=settings.max_keepalive,
        persistence="periodic" if settings.broker_persistence == "periodic" else "sync",
        persistence_interval=settings.broker_persistence_interval_ms / 1000,
    )


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0 picks a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: accepted sockets inherit it, and asyncio sets TCP_NODELAY only on sockets whose
    # proto says TCP. Without it every small HTTP response waits ~40 ms on Nagle and delayed ACKs.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def _bound_address(sock: socket.socket) -> tuple[str, int]:
    host, port = sock.getsockname()[:2]
    return str(host), int(port)


class Hub:
    """The whole service; ``async with Hub(settings) as hub: await hub.run(stop_event)``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.state = HubState.CREATED
        self.started_at = time.time()
        self.first_run: FirstRunCredentials | None = None
        self._stack = AsyncExitStack()
        self._database: Database | None = None
        # Committed changes reach the components that follow them: the services subscribe to it themselves,
        # the hub subscribes the broker (which knows no database).
        self._changes = ChangeBus()
        self._secrets: SecretBox | None = None
        self._http_socket: socket.socket | None = None
        self._http_server: _EmbeddedUvicorn | None = None
        self._broker: BrokerHandle | None = None
        self._embedded: Broker | None = None
        self._ca: CertificateAuthority | None = None
        self._messaging: MessagingService | None = None
        self._telemetry: TelemetryService | None = None
        self._commands: CommandService | None = None
        self._loops: BackgroundTasks | None = None
        self._socketio: SocketIOGateway | None = None
        self._integrations: IntegrationService | None = None
        self._authorizer = TopicAuthorizer()
        self._authenticator: DatabaseAuthenticator | None = None
        self._auth_backend: AuthBackend | None = None
        self.login_guard = LoginGuard.from_settings(settings)
        """Password login limits, shared by HTTP login and MQTT logins with an e-mail."""
        self._passwords: PasswordWorkers | None = None
        self._rules_file: RulesFile | None = None
        self._metrics_socket: socket.socket | None = None
        self._auth_backend_socket: socket.socket | None = None
        self.http_metrics = HttpMetrics()
        """Counts of the HTTP API's requests, filled by its middleware and read by ``/metrics``."""
        self.auth_checks = AuthChecks()
        """Authentication checks of the HTTP API (password, session token, API token), for ``/metrics``."""
        self.metrics_registry = hub_registry(self, self.http_metrics)
        """What ``/metrics`` exports: the hub's own collector and the process's."""

    # --- components ------------------------------------------------------------------------------

    @property
    def database(self) -> Database:
        """The open database."""
        if self._database is None:
            raise StateError("the hub is not started")
        return self._database

    @property
    def secrets(self) -> SecretBox:
        """Token hashing and secret encryption under the hub's key."""
        if self._secrets is None:
            raise StateError("the hub is not started")
        return self._secrets

    @property
    def passwords(self) -> PasswordWorkers:
        """The bounded threads that hash and check passwords."""
        if self._passwords is None:
            raise StateError("the hub is not started")
        return self._passwords

    @property
    def ca(self) -> CertificateAuthority:
        """The hub's certificate authority (client certificates for devices and users)."""
        if self._ca is None:
            raise StateError("the hub is not started")
        return self._ca

    @property
    def broker(self) -> BrokerHandle:
        """The broker the hub publishes through and subscribes to."""
        if self._broker is None:
            raise StateError("the hub is not started")
        return self._broker

    @property
    def authenticator(self) -> DatabaseAuthenticator:
        """The MQTT clients' authenticator (its counters feed ``/metrics``)."""
        if self._authenticator is None:
            raise StateError("the hub is not started")
        return self._authenticator

    @property
    def auth_backend(self) -> AuthBackend:
        """The answers served to external brokers as their auth backend (its counters feed ``/metrics``)."""
        if self._auth_backend is None:
            raise StateError("the hub is not started")
        return self._auth_backend

    @property
    def telemetry(self) -> TelemetryService:
        """Device telemetry: ingestion, status, history, commands, broadcasts, live events."""
        if self._telemetry is None:
            raise StateError("the hub is not started")
        return self._telemetry

    @property
    def commands(self) -> CommandService:
        """Commands to devices and broadcasts to organizations."""
        if self._commands is None:
            raise StateError("the hub is not started")
        return self._commands

    @property
    def realtime(self) -> RealtimeBus:
        """The live event bus behind ``/api/v1/stream`` and Socket.IO."""
        return self.telemetry.realtime

    @property
    def socketio(self) -> SocketIOGateway:
        """The Socket.IO server mounted at ``/socket.io``."""
        if self._socketio is None:
            raise StateError("the hub is not started")
        return self._socketio

    @property
    def messaging(self) -> MessagingService:
        """The REST/WebSocket messaging service: publishing, recorded filters, history, live feed."""
        if self._messaging is None:
            raise StateError("the hub is not started")
        return self._messaging

    @property
    def integrations(self) -> IntegrationService:
        """The connectors to external brokers and the actions their messages trigger."""
        if self._integrations is None:
            raise StateError("the hub is not started")
        return self._integrations

    def background(self) -> list[BackgroundTasks]:
        """The background tasks of each started service and of the hub itself (their crashes go to ``/metrics``)."""
        services = (self._telemetry, self._commands, self._messaging, self._integrations)
        groups = [service.tasks for service in services if service is not None]
        if self._loops is not None:
            groups.append(self._loops)
        return groups

    @property
    def mqtt_urls(self) -> dict[str, str]:
        """Where MQTT clients connect, by label (``MQTT``, ``MQTT TLS``, ``MQTT WebSocket``, ``MQTT WSS``).

        Empty with an external broker: clients connect to it, not to the hub.
        """
        if self._broker is None:
            raise StateError("the hub is not started")
        urls: dict[str, str] = {}
        if self._embedded is None:
            return urls
        for name, (host, port) in self._embedded.addresses.items():
            label, scheme = _LISTENER_LABELS[name]
            path = "/mqtt" if name in ("ws", "wss") else ""
            urls[label] = f"{scheme}://{host}:{port}{path}"
        return urls

    @property
    def http_address(self) -> tuple[str, int]:
        """The (host, port) the HTTP API listens on."""
        if self._http_socket is None:
            raise StateError("the hub is not started")
        return _bound_address(self._http_socket)

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        """The (host, port) of the separate metrics port, or None when ``/metrics`` is on the HTTP port or off."""
        return None if self._metrics_socket is None else _bound_address(self._metrics_socket)

    @property
    def auth_backend_address(self) -> tuple[str, int] | None:
        """The (host, port) of the auth backend's own port, or None when it is on the HTTP port or off."""
        return None if self._auth_backend_socket is None else _bound_address(self._auth_backend_socket)

    @property
    def uptime(self) -> float:
        """Seconds since the hub was created."""
        return time.time() - self.started_at

    def http_app(self) -> FastAPI:
        """The HTTP API over the started hub's components (endpoints see them, never the hub)."""
        state = AppState(
            settings=self.settings,
            database=self.database,
            secrets=self.secrets,
            broker=self.broker,
            started_at=self.started_at,
            services=(
                self.telemetry,
                self.commands,
                self.realtime,
                self.messaging,
                self.integrations,
                self.passwords,
                self.ca,
                self.login_guard,
                self.auth_checks,
                self.auth_backend,
            ),
        )
        return create_app(
            state,
            socketio=self.socketio.asgi_app,
            metrics_registry=self.metrics_registry,
            http_metrics=self.http_metrics,
        )

    # --- life cycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> Hub:
        if self.state is not HubState.CREATED:
            raise StateError(f"a hub can be started only once (it is {self.state.value})")
        self.state = HubState.STARTING
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            self.state = HubState.STOPPED
            raise
        self.state = HubState.RUNNING
        return self

    async def _start(self) -> None:
        settings = self.settings
        # The data directory is the hub's own (a database inside it is fine); any other missing directory is an error.
        make_private(settings.data_dir, self._private_files())
        check_location(settings.database_url, create=True)
        self._secrets = SecretBox(load_or_create_secret_key(settings.secret_key, settings.data_dir))
        try:
            await upgrade(settings.database_url)
            self._database = await self._stack.enter_async_context(
                Database(settings.database_url, changes=self._changes)
            )
            async with self._database.session() as session:
                self.first_run = await bootstrap_first_run(
                    session,
                    admin_email=settings.admin_email,
                    admin_password=settings.admin_password,
                    organization_name=settings.default_organization,
                )
        except DATABASE_ERRORS as exc:
            raise unavailable(settings.database_url, exc) from exc
        self._ca = CertificateAuthority.load_or_create(settings)
        self._passwords = await self._stack.enter_async_context(PasswordWorkers.from_settings(settings))
        # Telemetry starts before the broker and stops after it: no accepted message finds its writer closed.
        if settings.mqtt_rules_file is not None:
            self._rules_file = RulesFile(
                settings.mqtt_rules_file, interval=settings.mqtt_rules_reload_interval, on_change=self._rules_changed
            )
            self._authorizer.operator_rules = self._rules_file.load()
        self._telemetry = await self._stack.enter_async_context(TelemetryService(self._database, settings))
        self._socketio = await self._stack.enter_async_context(
            SocketIOGateway(self._telemetry.realtime, StreamAuthenticator(self._database, self._secrets))
        )
        self._authenticator = DatabaseAuthenticator(
            self._database, self._secrets, settings, passwords=self._passwords, guard=self.login_guard
        )
        directory = PrincipalDirectory(
            self._database, CredentialCache(settings.mqtt_auth_cache_ttl, max(1, settings.max_connections))
        )
        self._auth_backend = AuthBackend(self._authenticator, self._authorizer, directory)
        self._changes.subscribe(AccessEnded, lambda change: directory.forget(*change.principal_ids))
        self._changes.subscribe(DeviceChanged, lambda change: directory.forget(f"device:{change.device_id}"))
        # Runs after the broker stopped and before the database closes: the last uses noted get written and the
        # connections held for lookups go back.
        self._stack.push_async_callback(self._authenticator.settle)
        self._stack.push_async_callback(directory.settle)
        # With an external broker the hubs share its queues of recorded filters (see messaging/shared.py).
        shared: SharedRecording | None = None
        if settings.broker == "rabbitmq":
            rabbit = external.rabbit_broker(
                settings,
                self._database,
                self._telemetry.sink,
                self._authenticator,
                self._auth_backend,
                self._telemetry.realtime,
            )
            self._broker = await self._stack.enter_async_context(rabbit)
            shared = rabbit
            self._changes.subscribe(OrganizationCreated, external.vhost_follower(rabbit))
        else:
            self._broker = self._embedded = await self._start_embedded_broker()
        self._commands = await self._stack.enter_async_context(CommandService(self._telemetry, self._broker))
        self._changes.subscribe(AccessEnded, functools.partial(apply_access_ended, self._broker))
        self._messaging = await self._stack.enter_async_context(
            MessagingService(
                settings,
                self._database,
                self._broker,
                started_at=self.started_at,
                shared=shared,
                sync_interval=settings.rabbitmq_poll_interval,
            )
        )
        self._integrations = await self._stack.enter_async_context(
            IntegrationService(self._database, self._secrets, settings, self._broker)
        )
        self._http_socket = bind_socket(settings.host, settings.http_port)
        self._stack.callback(self._http_socket.close)
        if settings.metrics_enabled and settings.metrics_port is not None:
            self._metrics_socket = bind_socket(settings.host, settings.metrics_port)
            self._stack.callback(self._metrics_socket.close)
        if settings.auth_backend_secret is not None and settings.auth_backend_port is not None:
            self._auth_backend_socket = bind_socket(settings.host, settings.auth_backend_port)
            self._stack.callback(self._auth_backend_socket.close)
        logger.info("database ready (%s)", self._database.dialect)

    async def _start_embedded_broker(self) -> Broker:
        settings = self.settings
        state_store = None
        if settings.broker_persistence != "off":
            # Entered before the broker, so it closes after the broker's last write.
            state_store = await self._stack.enter_async_context(
                SQLiteStateStore(settings.data_dir / BROKER_STATE_FILE, durable=settings.broker_persistence == "sync")
            )
        return await self._stack.enter_async_context(
            Broker(
                broker_config(settings, self.ca.cert_file),
                authenticator=self.authenticator,
                authorizer=self._authorizer,
                sink=self.telemetry.sink,
                observer=self.telemetry.observer,
                state_store=state_store,
            )
        )

    def _private_files(self) -> list[Path]:
        """The files with secrets or state the hub keeps, which only its account may read."""
        settings = self.settings
        data_dir = settings.data_dir
        databases = [data_dir / BROKER_STATE_FILE]
        if (database := sqlite_file(settings.database_url)) is not None:
            databases.append(database)
        return [
            data_dir / SECRET_FILE_NAME,
            data_dir / CA_KEY_NAME,
            *(Path(f"{database}{suffix}") for database in databases for suffix in SQLITE_COMPANIONS),
        ]

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.state = HubState.STOPPING
        try:
            await self._stack.aclose()
        finally:
            self.state = HubState.STOPPED
            logger.info("hub stopped")

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set, then stop every background task."""
        if self.state is not HubState.RUNNING:
            raise StateError(f"the hub must be started before run() (it is {self.state.value})")
        config = uvicorn.Config(
            self.http_app(),
            log_config=None,
            access_log=self.settings.log_http_access,
            lifespan="on",
            timeout_graceful_shutdown=int(self.settings.shutdown_timeout),
            ws="websockets-sansio",
        )
        server = _EmbeddedUvicorn(config)
        self._http_server = server
        servers = [server]
        assert self._http_socket is not None
        # A crashed HTTP server ends the hub; a crashed loop is logged and runs again (mqtthub.background).
        loops = self._loops = BackgroundTasks("hub")
        async with asyncio.TaskGroup() as tasks, loops, contextlib.AsyncExitStack() as stack:
            tasks.create_task(server.serve(sockets=[self._http_socket]), name="http-server")
            if self._metrics_socket is not None:
                endpoint = metrics_endpoint(self.metrics_registry, self.settings.metrics_token)
                metrics_server = _EmbeddedUvicorn(
                    uvicorn.Config(metrics_app(endpoint), log_config=None, access_log=False, lifespan="off")
                )
                servers.append(metrics_server)
                tasks.create_task(metrics_server.serve(sockets=[self._metrics_socket]), name="metrics-server")
            guard = BackendGuard.from_settings(self.settings)
            if self._auth_backend_socket is not None and guard is not None:
                await stack.enter_async_context(AuthBackendServer(self.auth_backend, guard, self._auth_backend_socket))
            revalidator = CredentialRevalidator(self.database, self.broker, self.settings.mqtt_revalidate_interval)
            loops.loop("mqtt-credential-revalidation", revalidator.run)
            releaser = MemoryReleaser(self.broker.connected_count)
            loops.loop("memory-release", releaser.run)
            if self._rules_file is not None:
                loops.loop("mqtt-rules-reload", self._rules_file.watch)
            await stop.wait()
            logger.info("stopping")
            await loops.close()
            for each in servers:
                each.should_exit = True

    def _rules_changed(self, old: OperatorRules, new: OperatorRules) -> None:
        self._authorizer.operator_rules = new
        if self._broker is not None:
            invalidate_changed(self._broker, old, new)
