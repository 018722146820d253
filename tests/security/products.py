"""Helpers of the integration attack tests: a product of the administrator's organization."""

from __future__ import annotations

import httpx


async def new_mqtt_config_url(admin: httpx.AsyncClient, name: str) -> str:
    """A new product's ``…/mqtt-config`` URL."""
    product = await admin.post("/api/v1/products", json={"name": name})
    assert product.status_code == 201, product.text
    return f"/api/v1/products/{product.json()['id']}/mqtt-config"
