"""Typed answers of the hub's product endpoints (outbound MQTT integrations, document 002)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class Product(_Model):
    """A product: the unit an outbound MQTT configuration and its event subscriptions belong to."""

    id: str
    organization_id: str
    name: str
    description: str | None = None
    mqtt_configured: bool
    created_at: datetime
    updated_at: datetime


class ProductList(_Model):
    """``GET /api/v1/products``."""

    products: list[Product]


class ConnectionTest(_Model):
    """The result of ``POST /api/v1/products/{id}/mqtt-config/test``."""

    status: str
    connected: bool
    latency_ms: int | None = None
    error: str | None = None
    details: str = ""
    code: int | None = None
