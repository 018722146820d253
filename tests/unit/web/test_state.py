"""The app state: services found by type, dependencies that read it, a clear error when it is missing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI
from starlette.requests import HTTPConnection

from mqtthub.auth.attempts import LoginGuard
from mqtthub.auth.broker_hooks import DatabaseAuthenticator, TopicAuthorizer
from mqtthub.broker import Broker, BrokerConfig
from mqtthub.config import Settings
from mqtthub.crypto import SecretBox
from mqtthub.db import Database
from mqtthub.errors import StateError
from mqtthub.observability.auth_checks import AuthChecks
from mqtthub.web.deps import SettingsDep
from mqtthub.web.errors import install_error_handlers
from mqtthub.web.state import AppState, app_state, install_state, provide


@pytest.fixture
def state(tmp_path: Path) -> AppState:
    settings = Settings(_env_file=None, data_dir=tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}")
    database = Database(settings.database_url)
    secrets = SecretBox("web-state-test-key-" + "x" * 20)
    broker = Broker(
        BrokerConfig(), authenticator=DatabaseAuthenticator(database, secrets, settings), authorizer=TopicAuthorizer()
    )
    return AppState(
        settings=settings,
        database=database,
        secrets=secrets,
        broker=broker,
        started_at=0.0,
        services=(AuthChecks(), LoginGuard.from_settings(settings)),
    )


def test_a_service_is_found_by_its_type(state: AppState) -> None:
    assert isinstance(state.service(AuthChecks), AuthChecks)
    assert state.service(LoginGuard) is state.services[1]


def test_a_service_the_hub_does_not_run_is_a_state_error(state: AppState) -> None:
    with pytest.raises(StateError, match="the hub runs no Settings"):
        state.service(Settings)


def test_an_app_without_state_says_so() -> None:
    connection = HTTPConnection({"type": "http", "app": FastAPI(), "headers": []})
    with pytest.raises(StateError, match="no mqtthub state"):
        app_state(connection)


async def test_endpoints_read_the_installed_state_through_dependencies(state: AppState) -> None:
    app = FastAPI()
    install_state(app, state)
    install_error_handlers(app)

    @app.get("/limit")
    def limit(settings: SettingsDep, guard: Annotated[LoginGuard, Depends(provide(LoginGuard))]) -> dict[str, object]:
        return {"body": settings.http_max_body_size, "guard": guard is state.service(LoginGuard)}

    @app.get("/missing")
    def missing(settings: Annotated[Settings, Depends(provide(Settings))]) -> dict[str, str]:
        return {"never": "reached"}

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        assert (await client.get("/limit")).json() == {"body": state.settings.http_max_body_size, "guard": True}
        answer = await client.get("/missing")
    assert answer.status_code == 500
    assert answer.json()["success"] is False
