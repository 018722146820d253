"""Device telemetry: topic routing, validation, durable batched ingestion, thresholds, status,
history, commands and broadcasts, for MQTT and HTTP through one code path."""

from mqtthub.telemetry.service import TelemetryService

__all__ = ["TelemetryService"]
