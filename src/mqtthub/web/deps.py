"""Request dependencies shared by every domain: settings, secrets, the database session of the request.

A domain's own services are declared next to its endpoints with :func:`mqtthub.web.state.provide`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from mqtthub.config import Settings
from mqtthub.crypto import SecretBox
from mqtthub.db import Database
from mqtthub.web.state import AppState, app_state


def get_settings(connection: HTTPConnection) -> Settings:
    """The hub's settings."""
    return app_state(connection).settings


def get_secrets(connection: HTTPConnection) -> SecretBox:
    """Token hashing and secret encryption under the hub's key."""
    return app_state(connection).secrets


def get_database(connection: HTTPConnection) -> Database:
    """The open database (for work outside the request's own session)."""
    return app_state(connection).database


DatabaseDep = Annotated[Database, Depends(get_database)]


async def get_session(database: DatabaseDep) -> AsyncIterator[AsyncSession]:
    """A session committed when the request handler returns, rolled back if it raises.

    It is bound with ``scope="function"``: the commit happens before the response is sent, so
    a client that got a 2xx reads its own write on its next request, and a failing commit is
    answered as an error instead of after a success was already sent.
    """
    async with database.session() as session:
        yield session


StateDep = Annotated[AppState, Depends(app_state)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
SecretsDep = Annotated[SecretBox, Depends(get_secrets)]
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
