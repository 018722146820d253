"""What the API and the console tell about a product's connection: its live status, and a test connection.

``POST …/mqtt-config/test`` and the console's **Test connection** button both call :func:`check_connection`;
``GET …/mqtt-config/status`` and the console's status panel both call :func:`status_view`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
from typing import Any

from mqtthub.client.connection import ConnectRefused, close_client, connect
from mqtthub.client.tls import CertificateError
from mqtthub.integrations.outbound import OutboundRefused
from mqtthub.integrations.repository import merge_broker
from mqtthub.integrations.runtime import connection_options, generated_client_id
from mqtthub.integrations.schemas import BrokerConfig, ConnectionStatusJson, ConnectionTestResult
from mqtthub.integrations.service import IntegrationService
from mqtthub.integrations.status import ConnectionStatus

CONNECT_TIMEOUT = 10.0
"""Seconds a test connection waits for the broker's CONNACK."""


async def check_connection(
    integrations: IntegrationService, product_id: str, body: BrokerConfig, stored: dict[str, Any] | None
) -> ConnectionTestResult:
    """A real connection attempt with ``body``'s settings, beside the running connector (which is not touched).

    Secrets left out (or ``"***"``) are taken from ``stored``, the product's stored broker object, under the
    rules of :func:`~mqtthub.integrations.repository.merge_broker`. The test uses its own client id, so the
    broker does not take over the running connector's session. Refusals and network errors are answered, not
    raised: the latency on success, otherwise the CONNACK code or the error.

    Raises:
        ValidationFailedError: a stored secret would be sent to another destination than the one it was saved for.
    """
    broker = merge_broker(body, stored, integrations.secrets)
    client_id = f"{body.client_id or generated_client_id(integrations.settings, product_id)}-test"
    options = connection_options(
        {**broker, "client_id": client_id}, integrations.secrets, client_id, connect_timeout=CONNECT_TIMEOUT
    )
    try:
        address = await integrations.fence.resolve(options.host, options.port)
    except OutboundRefused as exc:  # said before any packet is sent: nothing tells an open port from a closed one
        return _failure("Connection refused by outbound policy", str(exc))
    except (OSError, ValueError) as exc:
        return _failure(f"Connection failed: {exc}", "Broker unreachable")
    try:
        connected = await asyncio.to_thread(connect, dataclasses.replace(options, address=address))
    except ConnectRefused as exc:
        return ConnectionTestResult(
            status="error", connected=False, latency_ms=None, error=str(exc), details=exc.details, code=exc.code
        )
    except CertificateError as exc:
        return _failure("Certificate error", str(exc))
    except TimeoutError as exc:
        return _failure("Connection failed: timed out", str(exc) or "No answer from the broker")
    except ssl.SSLError as exc:
        return _failure(f"Connection failed: {exc.reason or exc}", "TLS handshake failed")
    except (OSError, ValueError) as exc:
        return _failure(f"Connection failed: {exc}", "Broker unreachable")
    await asyncio.to_thread(close_client, connected.client)
    return ConnectionTestResult(
        status="success",
        connected=True,
        latency_ms=max(1, round(connected.latency_ms)),
        error=None,
        details="Connected successfully",
    )


def _failure(error: str, details: str) -> ConnectionTestResult:
    return ConnectionTestResult(status="error", connected=False, latency_ms=None, error=error, details=details)


async def status_view(integrations: IntegrationService, product_id: str) -> ConnectionStatusJson:
    """The documented status object of a configured product's connector.

    A product whose connector does not run here is reported disconnected, with why: integrations are
    disabled on this hub, another hub sharing the database runs it (``hub`` names it), or it is starting.
    """
    status = integrations.status(product_id)
    if status is None:
        status = ConnectionStatus(
            product_id=product_id, client_id=generated_client_id(integrations.settings, product_id)
        )
        if not integrations.settings.integrations_enabled:
            status.connection_error = "integrations are disabled on this hub (MQTTHUB_INTEGRATIONS_ENABLED)"
        else:
            # Another hub sharing the database runs it, or the configuration was just committed and it is starting.
            status.hub = await integrations.holder(product_id)
    return status.as_dict()
