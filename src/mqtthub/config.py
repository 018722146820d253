"""Settings: every knob of the hub, read from ``MQTTHUB_*`` variables and an optional ``.env`` file.

Nothing is read at import time: :func:`load_settings` builds a :class:`Settings` when the
CLI (or a test) asks for one, and the composition root passes it down. The README's
configuration table is checked against this class by a test, so every field here is
documented there.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mqtthub.errors import ConfigurationError

ENV_PREFIX = "MQTTHUB_"


class Settings(BaseSettings):
    """The hub's settings. Each field is the variable ``MQTTHUB_<FIELD NAME IN CAPITALS>``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    # --- network -----------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Address every listener binds to; `0.0.0.0` to serve the network.")
    http_port: int = Field(8000, ge=0, le=65535, description="HTTP API port (0 picks a free port).")
    mqtt_port: int = Field(1883, ge=0, le=65535, description="MQTT over TCP port (0 picks a free port).")
    mqtt_enabled: bool = Field(True, description="Serve MQTT over TCP.")
    mqtts_port: int = Field(8883, ge=0, le=65535, description="MQTT over TLS port; served when a certificate is set.")
    ws_port: int = Field(8083, ge=0, le=65535, description="MQTT over WebSocket port (any path).")
    ws_enabled: bool = Field(True, description="Serve MQTT over WebSocket.")
    wss_port: int = Field(
        8085, ge=0, le=65535, description="MQTT over secure WebSocket port; served when a certificate is set."
    )
    tls_cert_file: Path | None = Field(
        None, description="PEM server certificate (chain) for the TLS and WSS listeners."
    )
    tls_key_file: Path | None = Field(None, description="PEM private key of `tls_cert_file`.")
    tls_client_certs: Literal["none", "optional", "required"] = Field(
        "optional", description="Client certificates on the TLS listeners, verified against the hub's CA."
    )

    # --- storage and secrets ------------------------------------------------------------------
    database_url: str = Field(
        "sqlite+aiosqlite:///./mqtthub.db",
        description="SQLAlchemy URL: `sqlite+aiosqlite:///path` or `postgresql+asyncpg://user:pass@host/db`.",
    )
    database_min_free_mb: float = Field(
        1.0,
        ge=0,
        description=(
            "SQLite: below this much free space (MiB) on the database's file system `/health` reports the database"
            ' down ("disk full"), before writes start to fail.'
        ),
    )
    data_dir: Path = Field(
        Path(), description="Directory for the generated secret key, the hub's CA and the broker state file."
    )
    secret_key: str | None = Field(
        None,
        min_length=32,
        description="Key for signing and encrypting (at least 32 characters); generated into `data_dir` when unset.",
    )

    # --- accounts and access --------------------------------------------------------------------
    admin_email: str = Field("admin@mqtthub.local", description="E-mail of the administrator created on first run.")
    admin_password: str | None = Field(
        None, min_length=8, description="Password of that administrator; generated and printed once when unset."
    )
    default_organization: str = Field(
        "default", min_length=1, description="Name of the organization created on first run."
    )
    allow_anonymous: bool = Field(False, description="Let MQTT clients connect without credentials (global namespace).")
    jwt_expiry_minutes: int = Field(60 * 24, ge=1, description="Lifetime of the JWT returned by login.")

    # --- identity: login limits, MQTT authentication, the hub's CA -------------------------------
    login_attempts_per_account: int = Field(
        10, ge=1, description="Login attempts allowed per account within `login_window_seconds` (then 429)."
    )
    login_attempts_per_address: int = Field(
        50, ge=1, description="Login attempts allowed per client address within `login_window_seconds` (then 429)."
    )
    login_window_seconds: float = Field(60.0, gt=0, description="Sliding window of the login limits, in seconds.")
    password_hash_threads: int = Field(
        2, ge=1, le=64, description="Threads that hash and check passwords (argon2), never on the event loop."
    )
    password_checks_pending: int = Field(
        16,
        ge=1,
        description="Password checks (HTTP and MQTT logins) running or waiting at once; more are refused as busy "
        "(HTTP 503, MQTT CONNACK 0x89).",
    )
    password_checks_per_address: int = Field(
        4, ge=1, description="Password checks in flight at once from one client address; more are refused as busy."
    )
    mqtt_auth_free_failures: int = Field(
        5, ge=0, description="Failed MQTT authentications per address per minute before refusals are delayed."
    )
    mqtt_auth_max_delay: float = Field(
        5.0, ge=0, le=60, description="Longest delay, in seconds, before refusing a repeatedly failing address."
    )
    mqtt_rules_file: Path | None = Field(
        None,
        description="Operator rules narrowing what anonymous clients and the global namespace may publish, "
        'subscribe and read retained (see "Operator rules"); reloaded when it changes.',
    )
    mqtt_rules_reload_interval: float = Field(
        1.0, gt=0, description="Seconds between checks of `mqtt_rules_file` for a change."
    )
    mqtt_revalidate_interval: float = Field(
        1.0,
        gt=0,
        description="Seconds between checks of connected MQTT clients' credentials against the database "
        "(revocations and disabled devices made outside the API, e.g. by the CLI, disconnect them within this time; "
        "deletions and deactivated users within 30 times it).",
    )
    mqtt_auth_cache_ttl: float = Field(
        10.0,
        ge=0,
        description="Seconds an accepted MQTT credential is trusted without asking the database again, so a "
        "reconnecting fleet is admitted quickly; revoking or disabling through the API or a revalidation "
        "forgets it at once. 0 asks the database on every CONNECT.",
    )
    device_token_expiry_days: int = Field(365, ge=1, description="Default lifetime of a new device token, in days.")
    ca_cert_file: Path | None = Field(
        None, description="PEM certificate of the hub's CA; generated into `data_dir` with its key when unset."
    )
    ca_key_file: Path | None = Field(None, description="PEM private key of `ca_cert_file`.")
    client_cert_validity_days: int = Field(365, ge=1, description="Lifetime of client certificates the CA issues.")

    # --- broker limits ----------------------------------------------------------------------------
    max_connections: int = Field(100_000, ge=1, description="Most simultaneous MQTT connections.")
    max_connection_rate: float = Field(
        10_000.0,
        gt=0,
        description="New MQTT connections accepted per second, with bursts of as many; beyond it a new socket "
        "is closed at once.",
    )
    max_packet_size: int = Field(
        1_048_576, ge=64, le=268_435_455, description="Largest MQTT packet accepted, in bytes."
    )
    max_inflight: int = Field(
        100, ge=1, le=65535, description="QoS 1/2 messages in flight per client (receive maximum)."
    )
    max_queued_messages: int = Field(
        1000, ge=1, description="QoS 1/2 messages kept per session while its client is slow or offline."
    )
    max_keepalive: int = Field(
        3600,
        ge=1,
        le=65535,
        description="Longest MQTT keep alive granted, in seconds: a 5.0 client asking for more, or for none (0), "
        "gets this value as Server Keep Alive in CONNACK. 3.1.1 clients keep their own (their protocol cannot "
        "be told another).",
    )
    broker: Literal["embedded", "rabbitmq"] = Field(
        "embedded",
        description="`embedded`: the hub is the MQTT broker. `rabbitmq`: an external RabbitMQ cluster is (see "
        "docs/scale-out.md); the hub opens no MQTT listener and uses the `rabbitmq_*` settings.",
    )
    rabbitmq_amqp_url: str | None = Field(
        None,
        description="`amqp://user:password@host:5672` of the hub's RabbitMQ account (an administrator), for "
        "`broker=rabbitmq`; the hub opens one connection per organization's vhost.",
    )
    rabbitmq_management_url: str | None = Field(
        None, description="Base URL of RabbitMQ's management API (`http://host:15672`), same account."
    )
    rabbitmq_ingest_queue: str = Field(
        "mqtthub.ingest",
        min_length=1,
        description="Name of the replicated queue every hub consumes device topics from.",
    )
    rabbitmq_prefetch: int = Field(
        500, ge=1, le=65535, description="Unacknowledged ingest messages one hub holds per organization's vhost."
    )
    rabbitmq_poll_interval: float = Field(
        2.0, gt=0, le=3600, description="Seconds between two listings of the cluster's MQTT connections."
    )
    broker_persistence: Literal["off", "periodic", "sync"] = Field(
        "sync",
        description="Keeping retained messages and persistent sessions across restarts, in `data_dir/broker-state.db`: "
        "`sync` acknowledges a QoS 1/2 PUBLISH only once the state it changed is on disk (survives `kill -9` and "
        "power loss), `periodic` writes every `broker_persistence_interval_ms` (a crash loses at most that much), "
        "`off` keeps them in memory only.",
    )
    broker_persistence_interval_ms: int = Field(
        1000, ge=10, le=3_600_000, description="Milliseconds between writes of the broker state in `periodic` mode."
    )

    # --- messaging API (REST, WebSocket, history) ----------------------------------------------
    max_history_size: int = Field(
        1000, ge=1, description="Messages kept in each organization's history; older ones are pruned."
    )
    message_retention_hours: float = Field(24.0, gt=0, description="Messages older than this leave the history.")
    ws_heartbeat_interval: float = Field(
        30.0, gt=0, description="Seconds between heartbeat frames on `/ws` connections."
    )
    ws_max_connections: int = Field(100, ge=1, description="Most simultaneous `/ws` connections.")
    http_max_body_size: int = Field(
        1_048_576,
        ge=1024,
        description="Largest HTTP request body, in bytes (413 above it); publish endpoints take `max_packet_size`, "
        "login 8 KiB.",
    )
    cors_origins: str = Field(
        "*", description="Comma-separated origins allowed by CORS on the HTTP API (`*` allows any)."
    )
    api_rate_limit: float = Field(
        50.0, ge=0, description="Requests per second allowed to each caller of the messaging API (0 disables)."
    )
    api_rate_burst: int = Field(100, ge=1, description="Requests a caller may make at once above the steady rate.")

    # --- integrations (connections to external brokers, event subscriptions, actions) -------------
    integrations_enabled: bool = Field(True, description="Run the connectors of products with an MQTT configuration.")
    integration_instance_id: str | None = Field(
        None,
        max_length=40,
        description="Names this hub in generated MQTT client ids; derived from host name and `data_dir` when unset.",
    )
    integration_lease_interval: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="With `broker=rabbitmq` on PostgreSQL, each product's connector runs on one hub, which holds its "
        "lease; the others try to take it every this many seconds (the hand-over time when that hub dies).",
    )
    integration_reconnect_min: float = Field(1.0, gt=0, description="First reconnect delay (s); doubles, jittered.")
    integration_reconnect_max: float = Field(60.0, gt=0, description="Longest reconnect delay (s).")
    integration_domain_actions_url: str | None = Field(
        None, description="Base URL of domain actions: type `activate_policy` POSTs to `<url>/activate_policy`."
    )
    integration_expression_timeout: float = Field(
        1.0, gt=0, le=60, description="Seconds one action's condition and templates may take; past it the action fails."
    )
    integration_expression_workers: int = Field(
        1, ge=1, le=64, description="Worker processes evaluating conditions and templates (off the event loop)."
    )
    integration_expression_max_length: int = Field(
        1_048_576,
        ge=1024,
        description="Most characters (or items) a template may build or output; integers are bounded to 4096 bits.",
    )
    outbound_allow: str | None = Field(
        None,
        description="Comma-separated networks and host names integrations may reach although they are not public "
        "(loopback, private, link-local, …): webhooks, HTTP calls, SMTP, remote brokers.",
    )
    smtp_host: str | None = Field(None, description="SMTP server for e-mail actions; e-mail actions fail when unset.")
    smtp_port: int = Field(587, ge=1, le=65535, description="SMTP server port.")
    smtp_username: str | None = Field(None, description="SMTP user name (no login when unset).")
    smtp_password: str | None = Field(None, description="SMTP password.")
    smtp_from: str = Field("mqtthub@localhost", description="Sender address of e-mail actions.")
    smtp_starttls: bool = Field(True, description="Upgrade the SMTP connection with STARTTLS.")
    smtp_timeout: float = Field(30.0, gt=0, description="Seconds allowed for one SMTP delivery.")

    # --- the hub as auth backend of external brokers (see "External brokers: auth backend") ----------
    auth_backend_secret: str | None = Field(
        None,
        min_length=16,
        description="Shared secret external brokers present to `/auth-backend/…` (bearer token, or basic-auth "
        "password); the auth backend endpoints are off while it is unset.",
    )
    auth_backend_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="Serve the auth backend on this port, by a small HTTP server of its own (cheaper per check "
        "than the HTTP API's stack and middleware), instead of on the API's port (0 picks a free port).",
    )
    auth_backend_networks: str = Field(
        "127.0.0.0/8, ::1",
        description="Comma-separated addresses and networks (CIDR) the auth backend answers; other callers get 403.",
    )

    # --- telemetry (device messages, history, live push) -------------------------------------------
    telemetry_queue_size: int = Field(
        10_000,
        ge=1,
        description="Device messages queued for the database; beyond it QoS 1/2 publishers are paused, QoS 0 dropped.",
    )
    telemetry_batch_size: int = Field(1000, ge=1, description="Most device messages written in one transaction.")
    telemetry_batch_delay_ms: float = Field(
        2.0, ge=0, le=1000, description="Milliseconds the ingest writer lets a batch fill before writing it."
    )
    telemetry_hold_timeout: float = Field(
        30.0,
        gt=0,
        description=(
            "Seconds the database may stay down while the queue is full before waiting QoS 1/2 publishers are"
            " disconnected (never acknowledged; they send again after reconnecting)."
        ),
    )
    telemetry_retention_days: float = Field(
        30.0, ge=0, description="Readings, alerts and rejected messages older than this are pruned (0 keeps all)."
    )
    realtime_queue_size: int = Field(
        1000,
        ge=1,
        description="Live messages and events queued per `/ws`, `/api/v1/stream` or Socket.IO client; beyond it the"
        " client's overflow policy drops the oldest (default) or disconnects it.",
    )

    # --- operations -------------------------------------------------------------------------------
    event_loop: Literal["asyncio", "auto", "uvloop"] = Field(
        "auto",
        description="Event loop of `mqtthub serve`: `auto` for uvloop when it is installed (`pip install` brings it "
        "on Linux, `mqtthub[speed]` elsewhere: fewer CPU seconds per message and per connection, less memory per "
        "connection, see docs/benchmarks.md) and the standard library's otherwise, `asyncio` for the standard "
        "library's, `uvloop` to insist on it.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Least severe level logged, in any case (`warning`, `WARNING`)."
    )
    log_format: Literal["text", "json"] = Field("text", description="`text` for people, `json` for log collectors.")
    log_http_access: bool = Field(False, description="Log one line per HTTP request (logger `mqtthub.http.access`).")
    metrics_enabled: bool = Field(True, description='Serve Prometheus metrics at `/metrics` (see "Monitoring").')
    metrics_token: str | None = Field(
        None, min_length=16, description="Bearer token `/metrics` requires (at least 16 characters); open when unset."
    )
    metrics_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="Serve `/metrics` on this port instead of the HTTP API's (0 picks a free port).",
    )
    metrics_organization_labels: bool = Field(
        False, description="Add per-organization series (labelled with organization ids) to `/metrics`."
    )
    shutdown_timeout: float = Field(4.0, gt=0, le=60, description="Seconds granted to open connections at shutdown.")

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_in_any_case(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("auth_backend_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        parse_networks(value)  # a ValueError names the bad entry
        return value

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @model_validator(mode="after")
    def _external_broker_located(self) -> Settings:
        if self.broker == "rabbitmq" and (self.rabbitmq_amqp_url is None or self.rabbitmq_management_url is None):
            raise ValueError("broker=rabbitmq needs MQTTHUB_RABBITMQ_AMQP_URL and MQTTHUB_RABBITMQ_MANAGEMENT_URL")
        return self


def parse_networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Networks from a comma-separated list (``127.0.0.0/8, ::1``; a bare address is a one-address network).

    Raises:
        ValueError: an entry is not an address or network.
    """
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip())


def load_settings(env_file: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from the environment, an optional ``.env`` file and explicit overrides.

    Overrides (CLI flags) win over the environment. Errors are raised as one
    :class:`ConfigurationError` whose message names the variable and the problem.

    Raises:
        ConfigurationError: a value is invalid.
    """
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        if env_file is not None:
            return Settings(_env_file=env_file, **given)
        return Settings(**given)
    except ValidationError as exc:
        raise ConfigurationError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    """One line per invalid setting: ``MQTTHUB_HTTP_PORT: Input should be a valid integer (got 'abc')``."""
    lines = []
    for error in exc.errors():
        name = ENV_PREFIX + "_".join(str(part) for part in error["loc"]).upper()
        given = error.get("input")
        shown = f" (got {given!r})" if isinstance(given, str | int | float) and not _is_secret(name) else ""
        lines.append(f"{name}: {error['msg']}{shown}")
    return "; ".join(lines)


def _is_secret(name: str) -> bool:
    return any(word in name for word in ("PASSWORD", "SECRET", "KEY", "METRICS_TOKEN", "AMQP_URL"))


def settings_table() -> str:
    """The README's configuration table in Markdown, generated from :class:`Settings`."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, info in Settings.model_fields.items():
        default = info.default
        shown = "unset" if default is None else f"`{default.as_posix() if isinstance(default, Path) else default}`"
        if isinstance(default, bool):
            shown = f"`{str(default).lower()}`"
        rows.append(f"| `{ENV_PREFIX}{name.upper()}` | {shown} | {info.description} |")
    return "\n".join(rows)
