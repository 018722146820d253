"""Request bodies of the telemetry endpoints (responses are the JSON shapes in ``events``/``history``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mqtthub.models import TelemetryDefinition


class _Body(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")


class DefinitionCreate(_Body):
    """A new telemetry definition: ``key`` is the sensor name readings are stored under."""

    key: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$")
    name: str = Field("", max_length=200)
    unit: str = Field("", max_length=32)
    min_threshold: float | None = Field(None, alias="minThreshold")
    max_threshold: float | None = Field(None, alias="maxThreshold")

    @model_validator(mode="after")
    def _ordered(self) -> DefinitionCreate:
        low, high = self.min_threshold, self.max_threshold
        if low is not None and high is not None and low > high:
            raise ValueError("minThreshold must not be greater than maxThreshold")
        return self


class DefinitionUpdate(_Body):
    """Changes to a telemetry definition; omitted fields stay, ``null`` thresholds are removed."""

    name: str | None = Field(None, max_length=200)
    unit: str | None = Field(None, max_length=32)
    min_threshold: float | None = Field(None, alias="minThreshold")
    max_threshold: float | None = Field(None, alias="maxThreshold")


class CommandCreate(_Body):
    """A command for a device (document 001's command message, without the token)."""

    command: str = Field(min_length=1, max_length=100)
    parameters: dict[str, Any] = Field(default_factory=dict)


class BroadcastCreate(_Body):
    """A message for every device of an organization."""

    message: Any = Field(description="Any JSON value but null; devices receive it as the `message` field.")
    qos: int = Field(1, ge=0, le=2)

    @field_validator("message")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("a broadcast needs a message")
        return value


def definition_json(definition: TelemetryDefinition) -> dict[str, Any]:
    """A telemetry definition as the API shows it; ``id`` is the ``telemetryDataId`` devices send."""
    return {
        "id": definition.id,
        "telemetryDataId": definition.id,
        "deviceId": definition.device_id,
        "organizationId": definition.organization_id,
        "key": definition.key,
        "name": definition.name,
        "unit": definition.unit,
        "minThreshold": definition.min_threshold,
        "maxThreshold": definition.max_threshold,
        "createdAt": definition.created_at.isoformat(),
    }
