"""Every HTTP endpoint declares a response model, so ``/openapi.json`` documents its body and FastAPI validates it.

The application's routes are walked as it serves them. An endpoint that answers JSON must declare a model
(a pydantic model or a ``TypedDict``) whose schema is an object with named properties: a bare ``dict`` or
``Any`` fails. The exceptions are listed here with their reason: answers without a JSON body (204), file
downloads, and what is not part of the API and left out of the OpenAPI document (WebSocket endpoints, mounted
apps, the web console, the documentation pages and ``/metrics``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, APIWebSocketRoute, iter_route_contexts
from prometheus_client.registry import CollectorRegistry
from pydantic import BaseModel, TypeAdapter
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send
from typing_extensions import TypedDict

from mqtthub.api.app import create_app
from mqtthub.auth.attempts import LoginGuard
from mqtthub.auth.broker_hooks import DatabaseAuthenticator, TopicAuthorizer
from mqtthub.auth.ca import CertificateAuthority
from mqtthub.broker import Broker, BrokerConfig
from mqtthub.config import Settings
from mqtthub.crypto import SecretBox
from mqtthub.db import Database
from mqtthub.observability.http import HttpMetrics
from mqtthub.web.state import AppState

WITHOUT_MODEL = {
    ("GET", "/api/v1/certificates/download/{secret}"): "a PKCS#12 file download (application/x-pkcs12)",
}
"""API endpoints that answer something other than a JSON body, and why."""

NOT_API = {
    "/ui": "the web console: server-rendered pages, form posts answered with redirects, figures for its own page",
    "/openapi.json": "the OpenAPI document itself",
    "/docs": "Swagger UI",
    "/docs/oauth2-redirect": "Swagger UI",
    "/redoc": "ReDoc",
    "/metrics": "Prometheus text format",
}
"""Paths (and what lies under them) that are not API operations and are left out of the OpenAPI document."""


async def _no_socketio(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError("not called")


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}",
        metrics_enabled=True,
    )
    database = Database(settings.database_url)
    secrets = SecretBox("response-models-test-key-" + "x" * 20)
    broker = Broker(
        BrokerConfig(), authenticator=DatabaseAuthenticator(database, secrets, settings), authorizer=TopicAuthorizer()
    )
    state = AppState(
        settings=settings,
        database=database,
        secrets=secrets,
        broker=broker,
        started_at=0.0,
        services=(LoginGuard.from_settings(settings), CertificateAuthority.load_or_create(settings)),
    )
    return create_app(state, socketio=_no_socketio, metrics_registry=CollectorRegistry(), http_metrics=HttpMetrics())


def _is_object(schema: dict[str, Any], definitions: dict[str, Any]) -> bool:
    """Whether ``schema`` (or every alternative of it) is an object with named properties."""
    if "$ref" in schema:
        return _is_object(definitions[schema["$ref"].rsplit("/", 1)[-1]], definitions)
    if "anyOf" in schema:
        return all(_is_object(option, definitions) for option in schema["anyOf"])
    return schema.get("type") == "object" and bool(schema.get("properties"))


def _not_api(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in NOT_API)


def _documented(model: Any) -> bool:
    if model is None:
        return False
    schema = TypeAdapter(model).json_schema(mode="serialization")
    return _is_object(schema, schema.get("$defs", {}))


def test_every_endpoint_declares_a_response_model(app: FastAPI) -> None:
    undocumented: list[str] = []
    exempted: set[tuple[str, str]] = set()
    operations = 0
    for context in iter_route_contexts(app.routes):
        route, path = context.original_route, context.path_format or ""
        if isinstance(route, APIRoute) and not getattr(context, "include_in_schema", True):
            assert _not_api(path), f"{path}: left out of the OpenAPI document but not a documented exception"
        elif isinstance(route, APIRoute):
            for method in sorted(route.methods or ()):
                operations += 1
                if (method, path) in WITHOUT_MODEL:
                    exempted.add((method, path))
                elif route.status_code != 204 and not _documented(route.response_model):
                    undocumented.append(f"{method} {path} ({route.response_model})")
        else:
            assert isinstance(route, APIWebSocketRoute | Mount) or (isinstance(route, Route) and _not_api(path)), (
                f"{path}: neither an API endpoint, a WebSocket, a mounted app nor a documented exception"
            )
    assert operations > 50, "the walk found the API's endpoints"
    assert not undocumented, "endpoints without a response model:\n" + "\n".join(undocumented)
    assert exempted == set(WITHOUT_MODEL), (
        f"exceptions for endpoints that no longer exist: {set(WITHOUT_MODEL) - exempted}"
    )


class _Named(BaseModel):
    name: str


class _Shape(TypedDict):
    name: str


def test_free_form_json_is_not_a_response_model_and_named_fields_are() -> None:
    assert not _documented(None)
    assert not _documented(dict[str, Any])
    assert not _documented(dict[str, list[dict[str, Any]]])
    assert not _documented(_Named | dict[str, Any])
    assert _documented(_Named)
    assert _documented(_Shape)
    assert _documented(_Named | _Shape)
