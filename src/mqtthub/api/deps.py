"""Request dependencies: the hub, and a database session whose transaction ends with the handler."""

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
    """A session committed when the request handler returns, rolled back if it raises.

    It is bound with ``scope="function"``: the commit happens before the response is sent, so
    a client that got a 2xx reads its own write on its next request, and a failing commit is
    answered as an error instead of after a success was already sent.
    """
    async with get_hub(request).database.session() as session:
        yield session


HubDep = Annotated["Hub", Depends(get_hub)]
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
