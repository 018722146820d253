"""The error mapping of the API, mounted on a small app of its own, served by uvicorn on an ephemeral port.

The app has routes that fail the ways real endpoints can (an unexpected exception, a number
too large for the database) and one that reads its body, so each answer can be checked
over a real socket: status, JSON error body, headers, and what the log keeps.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from pydantic import BaseModel

from mqtthub.web.errors import install_error_handlers
from mqtthub.web.limits import BodyLimitMiddleware, BodySize

INTERNALS = "the connection string postgresql://user:hunter2@db/prod"


class Credentials(BaseModel):
    username: str
    password: str


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/crash")
    async def crash() -> dict[str, str]:
        raise RuntimeError(INTERNALS)

    @app.get("/overflow")
    async def overflow() -> dict[str, str]:
        raise OverflowError("Python int too large to convert to SQLite INTEGER")

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    @app.post("/credentials")
    async def credentials(body: Credentials) -> dict[str, str]:
        return {"username": body.username}

    app.add_middleware(BodyLimitMiddleware, limits={BodySize.DEFAULT: 1024})
    install_error_handlers(app)
    app.add_middleware(CORSMiddleware, allow_origins=["*"])
    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    server = uvicorn.Server(uvicorn.Config(_app(), host="127.0.0.1", port=0, log_level="critical", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            yield http
    finally:
        server.should_exit = True
        await task


def _is_error_body(body: Any, code: str) -> bool:
    return (
        isinstance(body, dict)
        and body.get("success") is False
        and body.get("code") == code
        and isinstance(body.get("error"), str)
    )


async def test_an_unexpected_exception_is_a_json_500_logged_with_its_traceback(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="mqtthub.web.errors"):
        response = await client.get("/crash", headers={"Origin": "https://app.example"})
    assert response.status_code == 500
    assert response.json() == {
        "success": False,
        "error": "internal server error",
        "code": "internal_error",
        "detail": "internal server error",
    }
    assert "hunter2" not in response.text
    assert response.headers["access-control-allow-origin"] == "*"
    (record,) = [r for r in caplog.records if r.name == "mqtthub.web.errors"]
    assert record.exc_info is not None
    assert record.exc_info[0] is RuntimeError
    assert "GET /crash" in record.getMessage()


async def test_an_overflowing_number_is_422(client: httpx.AsyncClient) -> None:
    response = await client.get("/overflow")
    assert response.status_code == 422
    assert _is_error_body(response.json(), "validation_error")


async def test_starlette_404_and_405_are_json(client: httpx.AsyncClient) -> None:
    missing = await client.get("/no/such/path")
    assert missing.status_code == 404
    assert _is_error_body(missing.json(), "not_found")
    wrong_method = await client.delete("/echo")
    assert wrong_method.status_code == 405
    assert _is_error_body(wrong_method.json(), "method_not_allowed")
    assert wrong_method.headers["allow"] == "POST"


async def test_an_undecodable_body_is_400_and_malformed_json_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/credentials", content=b"\xff\xfe{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert _is_error_body(response.json(), "bad_request")
    malformed = await client.post("/credentials", content=b"{not json", headers={"Content-Type": "application/json"})
    assert malformed.status_code == 422
    assert malformed.json()["detail"][0]["type"] == "json_invalid"


async def test_validation_errors_keep_fastapis_detail_list_without_secrets(client: httpx.AsyncClient) -> None:
    response = await client.post("/credentials", json={"password": "hunter2-very-secret"})
    assert response.status_code == 422
    body = response.json()
    assert _is_error_body(body, "validation_error")
    (issue,) = body["detail"]
    assert issue["loc"] == ["body", "username"]
    assert issue["type"] == "missing"
    assert issue["input"] == {"password": "***"}
    assert "hunter2" not in response.text
    wrong_type = await client.post("/credentials", json={"username": "u", "password": ["hunter2-very-secret"]})
    assert wrong_type.status_code == 422
    assert wrong_type.json()["detail"][0]["input"] == "***"
    assert "hunter2" not in wrong_type.text


async def test_bodies_above_the_limit_are_413_and_below_pass(client: httpx.AsyncClient) -> None:
    assert (await client.post("/echo", content=b"x" * 1024)).json() == {"size": 1024}
    declared = await client.post("/echo", content=b"x" * 1025)
    assert declared.status_code == 413
    assert _is_error_body(declared.json(), "payload_too_large")

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"y" * 400

    streamed = await client.post("/echo", content=chunks())
    assert streamed.status_code == 413
    assert _is_error_body(streamed.json(), "payload_too_large")
