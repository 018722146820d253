"""The role gate fails closed: a route that declares no operation is refused to everyone."""

from __future__ import annotations

import httpx
from fastapi import Depends, FastAPI

from mqtthub.auth.roles import MATRIX, ROUTES, Operation, Role, enforce_role, matrix_table
from mqtthub.web.errors import install_error_handlers


async def test_an_undeclared_route_is_refused_even_without_credentials() -> None:
    app = FastAPI(dependencies=[Depends(enforce_role)])
    install_error_handlers(app)

    @app.get("/undeclared")
    async def undeclared() -> dict[str, str]:
        return {"reached": "yes"}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "healthy"}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub") as client:
        refused = await client.get("/undeclared")
        assert refused.status_code == 403
        assert refused.json()["error"] == "this route has no access policy"
        assert (await client.get("/health")).json() == {"status": "healthy"}  # declared public


def test_members_only_read_and_every_operation_has_roles() -> None:
    assert set(MATRIX) == set(Operation)
    assert all(MATRIX.values())
    writes = {operation for operation in Operation if operation not in (Operation.READ, Operation.READ_MESSAGES)}
    member_writes = {op for op in writes if Role.ORG_MEMBER in MATRIX[op]} - {
        Operation.PUBLIC,
        Operation.OWN_CERTIFICATE,
    }
    assert not member_writes
    assert set(ROUTES.values()) == set(Operation)
    assert matrix_table().count("\n") == len(Operation) + 1
