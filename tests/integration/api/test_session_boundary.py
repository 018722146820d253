"""A request's transaction commits before its response is sent, so a client reads its own writes."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI
from sqlalchemy import text
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mqtthub.db.engine import Database
from mqtthub.web.deps import SessionDep, get_database


class CountRowsWhenAnswering:
    """Counts the committed rows, over a connection of its own, as the response starts."""

    def __init__(self, app: ASGIApp, *, path: Path, seen: list[int]) -> None:
        self.app = app
        self.path = path
        self.seen = seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                with sqlite3.connect(self.path) as connection:
                    self.seen.append(connection.execute("SELECT count(*) FROM notes").fetchone()[0])
            await send(message)

        await self.app(scope, receive, counting_send)


async def test_the_commit_precedes_the_response(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    seen: list[int] = []
    async with Database(f"sqlite+aiosqlite:///{path}") as database:
        async with database.engine.begin() as connection:
            await connection.execute(text("CREATE TABLE notes (body TEXT)"))
        app = FastAPI()
        app.dependency_overrides[get_database] = lambda: database

        @app.post("/notes", status_code=201)
        async def add(session: SessionDep) -> dict[str, str]:
            await session.execute(text("INSERT INTO notes VALUES ('first')"))
            return {"status": "stored"}

        app.add_middleware(CountRowsWhenAnswering, path=path, seen=seen)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="critical", lifespan="off"))
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                response = await client.post("/notes")
        finally:
            server.should_exit = True
            await task
    assert response.status_code == 201
    assert seen == [1]
