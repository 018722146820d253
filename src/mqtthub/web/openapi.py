"""Every error status an operation can answer, documented with the one error schema.

The OpenAPI document FastAPI generates lists only what each route declares. This module
adds the error statuses each operation can return, derived from what the operation is made
of in that document rather than written on every route:

- every operation: 500 (an unexpected error, still answered with the JSON error body);
- a request body: 400 (unparsable), 413 (above the route's body limit, see
  :mod:`mqtthub.web.limits`) and 422;
- any parameter: 422; a path parameter: 404 (the resource it names does not exist);
- a security dependency (bearer token, API key): 401 and 403;
- whatever the route or its router declares with ``responses=`` (:func:`errors` names the usual ones),
  e.g. 409, 429 or 503.

Each of these responses gets the :class:`ErrorResponse` schema, which replaces FastAPI's
``HTTPValidationError`` for 422 (it keeps its ``detail`` list, as the reference documents show).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel, Field

_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
_SCHEMA_REF = "#/components/schemas/ErrorResponse"

DESCRIPTIONS: dict[int, str] = {
    400: "The request body could not be parsed",
    401: "Missing, invalid, expired or revoked credentials",
    403: "Outside the caller's rights",
    404: "No such resource, or not visible to the caller",
    409: "Clashes with an existing resource or the current state",
    413: "The request body is larger than this operation accepts",
    422: "Invalid input: `detail` lists the validation errors, or says what is wrong",
    429: "Too many requests: retry after the `Retry-After` header's seconds",
    500: "Unexpected server error",
    503: "A dependency (the broker, the database, a remote broker) is unavailable",
}


class ValidationIssue(BaseModel):
    """One request validation error, as FastAPI reports it (secret inputs are redacted)."""

    loc: list[str | int]
    msg: str
    type: str
    input: Any = None
    ctx: dict[str, Any] | None = None


class ErrorResponse(BaseModel):
    """The body of every 4xx and 5xx answer."""

    success: Literal[False] = False
    error: str = Field(description="What went wrong, for people.")
    code: str = Field(description="A stable machine-readable code: `not_found`, `validation_error`, ….")
    detail: str | list[ValidationIssue] = Field(
        description="The message again, or for invalid requests the list of validation errors."
    )
    field: str | None = Field(None, description="The offending input field, when one is to blame.")


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """A ``responses=`` value declaring ``statuses`` with their standard descriptions."""
    return {status: {"description": DESCRIPTIONS[status]} for status in statuses}


def statuses_of(operation: dict[str, Any]) -> set[int]:
    """The error statuses an OpenAPI ``operation`` can answer (see the module docstring)."""
    found = {500}
    parameters = operation.get("parameters", [])
    if "requestBody" in operation:
        found |= {400, 413, 422}
    if parameters:
        found.add(422)
    if any(parameter.get("in") == "path" for parameter in parameters):
        found.add(404)
    if operation.get("security"):
        found |= {401, 403}
    found |= {int(status) for status in operation.get("responses", {}) if status.isdigit() and int(status) >= 400}
    return found


def _document(operation: dict[str, Any], statuses: Iterable[int]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    for status in sorted(statuses):
        response = responses.setdefault(str(status), {"description": DESCRIPTIONS.get(status, "Error")})
        content = response.setdefault("content", {}).setdefault("application/json", {})
        schema = content.get("schema")
        if schema is None or schema.get("$ref", "").endswith("/HTTPValidationError"):
            content["schema"] = {"$ref": _SCHEMA_REF}


def document_errors(schema: dict[str, Any]) -> None:
    """Add every operation's error statuses, with :class:`ErrorResponse`, to the OpenAPI ``schema`` in place."""
    for path_item in schema.get("paths", {}).values():
        for method, operation in path_item.items():
            if method in _METHODS:
                _document(operation, statuses_of(operation))
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    definition = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(definition.pop("$defs", {}))
    components["ErrorResponse"] = definition
    for replaced in ("HTTPValidationError", "ValidationError"):
        if f'"#/components/schemas/{replaced}"' not in json.dumps(schema):
            components.pop(replaced, None)


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` document every operation's errors (computed once per generated document)."""
    generate = app.openapi
    documented: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        schema = generate()
        if not documented or documented[0] is not schema:
            document_errors(schema)
            documented[:] = [schema]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
