"""The OpenAPI document lists the error statuses each operation can answer, derived from what it is made of."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from mqtthub.web.openapi import errors, install_openapi

_bearer = HTTPBearer(auto_error=False)


class Item(BaseModel):
    name: str


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/")
    async def root() -> dict[str, str]:
        return {}

    @app.get("/items")
    async def search(q: str | None = None) -> dict[str, str]:
        return {}

    @app.post("/items", status_code=201, responses=errors(409))
    async def create(
        item: Item, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> dict[str, str]:
        return {}

    @app.get("/items/{item_id}", responses={503: {"description": "Storage down"}})
    async def read(item_id: int) -> dict[str, str]:
        return {}

    install_openapi(app)
    return app


def _statuses(schema: dict[str, Any], path: str, method: str) -> set[str]:
    return set(schema["paths"][path][method]["responses"])


def test_statuses_follow_from_body_parameters_security_and_declarations() -> None:
    schema = _app().openapi()
    assert _statuses(schema, "/", "get") == {"200", "500"}
    assert _statuses(schema, "/items", "get") == {"200", "422", "500"}
    assert _statuses(schema, "/items", "post") == {"201", "400", "401", "403", "409", "413", "422", "500"}
    assert _statuses(schema, "/items/{item_id}", "get") == {"200", "404", "422", "500", "503"}


def test_every_error_response_has_the_error_schema_and_fastapis_default_is_gone() -> None:
    schema = _app().openapi()
    for path_item in schema["paths"].values():
        for operation in path_item.values():
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref == "#/components/schemas/ErrorResponse", (status, response)
    components = schema["components"]["schemas"]
    assert "HTTPValidationError" not in components
    assert set(components["ErrorResponse"]["required"]) == {"error", "code", "detail"}
    assert schema["paths"]["/items/{item_id}"]["get"]["responses"]["503"]["description"] == "Storage down"


def test_the_document_is_documented_once_and_stays_the_same() -> None:
    app = _app()
    assert app.openapi() is app.openapi()
