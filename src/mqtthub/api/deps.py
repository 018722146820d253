"""Request dependencies: the hub, and a database session whose transaction ends with the request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

if TYPE_CHECKING:
    from mqtthub.hub import Hub


def get_hub(request: Request) -> Hub:
    """The hub serving this request."""
    hub: Hub = request.app.state.hub
    return hub


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session committed when the request handler returns, rolled back if it raises."""
    async with get_hub(request).database.session() as session:
        yield session


HubDep = Annotated["Hub", Depends(get_hub)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
