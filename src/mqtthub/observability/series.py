"""Metric families of each component, built from its counters at scrape time.

One function per component; each reads a snapshot and yields families. The series are listed
in the README's "Monitoring" section, and a test checks the dashboard and alert rules use only
names these functions yield.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from mqtthub.mqtt.reason_codes import ReasonCode
from mqtthub.observability.histogram import Histogram
from mqtthub.telemetry.writer import WriterState

if TYPE_CHECKING:
    from mqtthub.auth.broker_hooks import DatabaseAuthenticator
    from mqtthub.authbackend.common import AuthBackend
    from mqtthub.background import BackgroundTasks
    from mqtthub.broker.handle import BrokerHandle
    from mqtthub.config import Settings
    from mqtthub.integrations.service import IntegrationService
    from mqtthub.messaging.service import MessagingService
    from mqtthub.observability.auth_checks import AuthChecks
    from mqtthub.realtime.fanout import FanOut
    from mqtthub.telemetry import TelemetryService


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _labelled(
    family: CounterMetricFamily | GaugeMetricFamily, values: Mapping[str, float]
) -> CounterMetricFamily | GaugeMetricFamily:
    for label, value in sorted(values.items()):
        family.add_metric([label], value)
    return family


def histogram_family(name: str, documentation: str, histogram: Histogram) -> Metric:
    """A Prometheus histogram family holding one unlabelled :class:`Histogram`."""
    family = HistogramMetricFamily(name, documentation)
    family.add_metric([], histogram.buckets(), histogram.sum)
    return family


def _reason_name(code: int) -> str:
    try:
        return ReasonCode(code).name.lower()
    except ValueError:
        return f"0x{code:02x}"


def broker_families(
    broker: BrokerHandle, settings: Settings, authenticator: DatabaseAuthenticator | None
) -> Iterator[Metric]:
    """Connections, sessions, subscriptions, retained messages, traffic, drops and MQTT authentication."""
    stats = broker.stats()
    yield _gauge("mqtthub_mqtt_connections", "MQTT clients connected now.", stats.clients_connected)
    yield _counter("mqtthub_mqtt_connections_accepted", "MQTT connections accepted (CONNACK 0).", stats.clients_total)
    refused: Counter[str] = Counter({_reason_name(code): count for code, count in stats.connects_refused.items()})
    refused["connection_limit"] += stats.connections_rejected
    yield _labelled(
        CounterMetricFamily(
            "mqtthub_mqtt_connections_refused",
            "MQTT connections refused, by reason (a CONNACK reason code name, or connection_limit).",
            labels=["reason"],
        ),
        refused,
    )
    yield _labelled(
        CounterMetricFamily(
            "mqtthub_mqtt_disconnects", "MQTT connections closed by the broker, by reason.", labels=["reason"]
        ),
        {
            "keepalive_timeout": stats.keepalive_timeouts,
            "connect_timeout": stats.connect_timeouts,
            "protocol_error": stats.protocol_errors,
            "kicked": stats.kicked,
            "credentials_expired": stats.expired_principals,
        },
    )
    yield _gauge("mqtthub_mqtt_sessions", "MQTT sessions (connected and persistent offline).", stats.sessions)
    yield _gauge("mqtthub_mqtt_subscriptions", "Subscriptions, the hub's own included.", stats.subscriptions)
    yield _gauge("mqtthub_mqtt_retained_messages", "Retained messages stored.", stats.retained_messages)
    yield _counter("mqtthub_mqtt_messages_received", "PUBLISH packets accepted from clients.", stats.messages_received)
    yield _counter("mqtthub_mqtt_messages_sent", "PUBLISH packets sent to clients.", stats.messages_sent)
    yield _counter("mqtthub_mqtt_received_bytes", "Bytes read from MQTT clients.", stats.bytes_received)
    yield _counter("mqtthub_mqtt_sent_bytes", "Bytes written to MQTT clients.", stats.bytes_sent)
    yield _labelled(
        CounterMetricFamily(
            "mqtthub_mqtt_messages_dropped",
            "Messages not delivered or not accepted, by reason.",
            labels=["reason"],
        ),
        {
            "qos0_overflow": stats.qos0_dropped,
            "queue_full": stats.queue_dropped,
            "expired": stats.expired_dropped,
            "too_large_for_client": stats.oversize_dropped,
            "delivery_failed": stats.delivery_failed,
            "unauthorized": stats.publish_denied,
            "payload_format_invalid": stats.payload_format_invalid,
            "topic_too_long": stats.topic_too_long,
            "refused_by_hub": stats.sink_rejected,
            "store_unavailable": stats.sink_unavailable,
        },
    )
    yield _counter(
        "mqtthub_mqtt_duplicates_answered",
        "QoS 1 re-sends (DUP) of a message already taken, answered without storing it again.",
        stats.qos1_duplicates,
    )
    yield _counter(
        "mqtthub_mqtt_acknowledgements_held",
        "Acknowledgements held back while a connected client's queue was half full (its publishers slowed down).",
        stats.acks_held,
    )
    yield _counter(
        "mqtthub_mqtt_holds_given_up",
        "Holds let go because the client did not work its queue down in time (it then drops its oldest).",
        stats.holds_given_up,
    )
    yield _counter("mqtthub_mqtt_subscribe_denied", "Subscriptions refused as not authorized.", stats.subscribe_denied)
    yield _counter(
        "mqtthub_mqtt_subscriptions_revoked",
        "Subscriptions removed after rights narrowed.",
        stats.subscriptions_revoked,
    )
    yield _gauge("mqtthub_mqtt_session_queue_messages", "Messages queued in all sessions.", stats.queued_messages)
    yield _counter(
        "mqtthub_broker_state_batches_written", "Batches of broker state written to disk.", stats.state_batches_written
    )
    yield _counter(
        "mqtthub_broker_state_write_failures", "Failed (retried) writes of broker state.", stats.state_write_failures
    )
    yield _gauge(
        "mqtthub_broker_state_write_failing",
        "1 while broker state cannot be written (sync mode: acknowledgements wait).",
        0 if stats.state_write_error is None else 1,
    )
    yield _gauge(
        "mqtthub_mqtt_session_queue_max_messages", "Messages queued in the fullest session.", stats.session_queue_max
    )
    yield _gauge(
        "mqtthub_mqtt_session_queue_capacity",
        "Messages a session may queue (MQTTHUB_MAX_QUEUED_MESSAGES).",
        settings.max_queued_messages,
    )
    if authenticator is not None:
        results: Counter[str] = Counter(authenticator.refused)
        results["accepted"] = sum(authenticator.accepted.values())
        yield _labelled(
            CounterMetricFamily(
                "mqtthub_mqtt_auth_checks",
                "MQTT CONNECT authentications, by result (accepted, or the refusal's reason).",
                labels=["result"],
            ),
            results,
        )
        yield _labelled(
            CounterMetricFamily(
                "mqtthub_mqtt_auth_accepted", "MQTT authentications accepted, by principal kind.", labels=["kind"]
            ),
            authenticator.accepted,
        )
    if settings.metrics_organization_labels:
        by_org: Counter[str] = Counter(principal.organization_id or "" for _, principal in broker.clients())
        yield _labelled(
            GaugeMetricFamily(
                "mqtthub_organization_mqtt_connections",
                'MQTT clients connected now, by organization id ("" for the global namespace).',
                labels=["organization"],
            ),
            by_org,
        )


def auth_families(checks: AuthChecks, authenticator: DatabaseAuthenticator) -> Iterator[Metric]:
    """Authentication checks of every door, by credential kind and result."""
    family = CounterMetricFamily(
        "mqtthub_auth_checks",
        "Authentication checks, by kind (mqtt, password, session_token, api_token, none) and result.",
        labels=["kind", "result"],
    )
    counts = checks.counts.copy()
    counts[("mqtt", "accepted")] += sum(authenticator.accepted.values())
    counts[("mqtt", "refused")] += sum(authenticator.refused.values())
    for (kind, result), count in sorted(counts.items()):
        family.add_metric([kind, result], count)
    yield family


def auth_backend_families(backend: AuthBackend) -> Iterator[Metric]:
    """Checks answered to external brokers, requests refused by the guard, and the answers' latency."""
    family = CounterMetricFamily(
        "mqtthub_auth_backend_checks",
        "Checks answered to external brokers, by contract, check and result (allow, deny, error).",
        labels=["contract", "check", "result"],
    )
    for (contract, check, result), count in sorted(backend.checks.items()):
        family.add_metric([contract, check, result], count)
    yield family
    yield _labelled(
        CounterMetricFamily(
            "mqtthub_auth_backend_refused_requests",
            "Auth backend requests refused before any check, by reason (network, secret).",
            labels=["reason"],
        ),
        backend.refused_requests,
    )
    yield histogram_family("mqtthub_auth_backend_seconds", "Time to answer one auth backend request.", backend.latency)


def telemetry_families(telemetry: TelemetryService, messaging: MessagingService) -> Iterator[Metric]:
    """Ingestion (stored, rejected, dropped), the writer's queue, batches, commit latency and state; live clients."""
    writer = telemetry.writer
    yield _counter(
        "mqtthub_telemetry_offered", "Device messages taken from the broker for storing.", telemetry.sink.offered
    )
    yield _labelled(
        CounterMetricFamily("mqtthub_telemetry_stored", "Device messages and events stored, by kind.", labels=["kind"]),
        {str(kind): count for kind, count in telemetry.stored.items()},
    )
    yield _labelled(
        CounterMetricFamily(
            "mqtthub_telemetry_rejected",
            "Device messages rejected (and logged as rejected), by the field at fault.",
            labels=["reason"],
        ),
        telemetry.rejected,
    )
    yield _counter(
        "mqtthub_telemetry_dropped", "QoS 0 device messages dropped because the ingest queue was full.", writer.dropped
    )
    yield _counter("mqtthub_telemetry_failed", "Device messages that could not be written.", writer.failed)
    yield _counter(
        "mqtthub_telemetry_publisher_pauses",
        "Device messages parked because the ingest queue was full (their publishers wait).",
        writer.parked_total,
    )
    yield _gauge("mqtthub_telemetry_queue_items", "Device messages waiting for the database.", writer.queued)
    yield _gauge(
        "mqtthub_telemetry_queue_capacity", "Ingest queue size (MQTTHUB_TELEMETRY_QUEUE_SIZE).", writer.capacity
    )
    yield _counter("mqtthub_telemetry_batches", "Ingest transactions committed.", writer.batches)
    yield _counter("mqtthub_telemetry_written", "Items in committed ingest transactions.", writer.written)
    yield histogram_family("mqtthub_telemetry_batch_size", "Items per ingest transaction.", writer.batch_sizes)
    yield histogram_family(
        "mqtthub_telemetry_commit_seconds", "Time to write and commit one ingest transaction.", writer.commit_seconds
    )
    yield _counter(
        "mqtthub_telemetry_database_errors",
        "Ingest transactions that failed (retried or split).",
        writer.database_errors,
    )
    yield _gauge(
        "mqtthub_telemetry_writes_failing",
        "1 while the database refuses ingest writes (messages held, publishers paused), else 0.",
        0 if writer.outage is None else 1,
    )
    yield _counter("mqtthub_telemetry_database_outages", "Episodes of failing ingest writes.", writer.outages)
    yield _counter(
        "mqtthub_telemetry_database_refused",
        "Device messages the database refused (recorded as rejected).",
        writer.refused,
    )
    yield _counter(
        "mqtthub_telemetry_released",
        "Device messages not acknowledged (publisher disconnected) after MQTTHUB_TELEMETRY_HOLD_TIMEOUT of outage.",
        writer.released,
    )
    state = GaugeMetricFamily(
        "mqtthub_telemetry_writer_state", "The ingest writer's state (1 for the current one).", labels=["state"]
    )
    for candidate in WriterState:
        state.add_metric([candidate.value], 1 if writer.state is candidate else 0)
    yield state
    yield from live_families((telemetry.realtime, messaging.live))
    relay = telemetry.realtime.relay
    if relay is not None:
        yield _labelled(
            CounterMetricFamily(
                "mqtthub_live_relayed_events",
                "Live events between the hubs (external broker mode): sent to the others, received from them, "
                "dropped (not sent: the broker connection was down or too far behind).",
                labels=["direction"],
            ),
            {"sent": relay.sent, "received": relay.received, "dropped": relay.dropped},
        )


def live_families(fanouts: Sequence[FanOut[Any]]) -> Iterator[Metric]:
    """Live clients, events dropped for slow ones and slow ones disconnected, by endpoint (fan-out name)."""
    yield _labelled(
        GaugeMetricFamily(
            "mqtthub_live_clients", "Live-stream clients connected now, by endpoint.", labels=["endpoint"]
        ),
        {fanout.name: fanout.count() for fanout in fanouts},
    )
    yield _labelled(
        CounterMetricFamily(
            "mqtthub_live_dropped",
            "Live events discarded for clients too slow to take them (drop_oldest policy), by endpoint.",
            labels=["endpoint"],
        ),
        {fanout.name: fanout.dropped for fanout in fanouts},
    )
    yield _labelled(
        CounterMetricFamily(
            "mqtthub_live_disconnected",
            "Live clients disconnected for falling behind (disconnect policy), by endpoint.",
            labels=["endpoint"],
        ),
        {fanout.name: fanout.disconnected for fanout in fanouts},
    )


def integration_families(integrations: IntegrationService) -> Iterator[Metric]:
    """Connector states, messages received from external brokers, actions by type and result."""
    yield _labelled(
        GaugeMetricFamily(
            "mqtthub_integration_connectors",
            "Connectors to external brokers, by state; `standby`: configured, run by another hub (its lease holder).",
            labels=["state"],
        ),
        integrations.connector_states(),
    )
    yield _counter(
        "mqtthub_integration_messages_received",
        "Messages received from external brokers.",
        integrations.messages_received,
    )
    actions = CounterMetricFamily(
        "mqtthub_integration_actions",
        "Actions run by event subscriptions, by type and result (executed, skipped by condition, failed).",
        labels=["type", "result"],
    )
    for (kind, result), count in sorted(integrations.action_results.items()):
        actions.add_metric([kind, result], count)
    yield actions


def background_families(groups: Iterable[BackgroundTasks]) -> Iterator[Metric]:
    """Crashes of the services' background loops (each is logged and the loop runs again)."""
    restarts = CounterMetricFamily(
        "mqtthub_background_loop_restarts",
        "Background loops that crashed and were started again, by service and loop.",
        labels=["service", "loop"],
    )
    for group in groups:
        for loop, count in sorted(group.restarts.items()):
            restarts.add_metric([group.owner, loop], count)
    yield restarts
