"""Conditions and templates evaluated in worker processes, each evaluation under a time budget.

Conditions and templates are filled from message payloads, so whoever publishes can try to
make them expensive. Evaluating them on the event loop would let one message stall the whole
hub; a thread could not be stopped. So they run in a small pool of worker processes
(``python -m mqtthub.integrations.expression_worker``): a worker stops its own evaluation
after ``timeout`` seconds (a timer signal, between two bytecodes), runs under a memory limit,
and is killed and replaced when it does not answer within ``timeout`` plus a grace period
(a single long C-level operation ignores the timer). Jobs and answers travel as one line of
JSON each over the worker's stdin and stdout; nothing the worker sends is unpickled.

A round trip (a condition and a few templates) costs about a quarter of a millisecond on a
busy two-core machine, next to the milliseconds of the webhook or e-mail it prepares.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from dataclasses import dataclass
from functools import lru_cache
from types import TracebackType
from typing import Any, Literal

from mqtthub.errors import StateError
from mqtthub.integrations.conditions import Condition
from mqtthub.integrations.templates import DEFAULT_LIMITS, ExpressionLimits, render, render_json

logger = logging.getLogger(__name__)

Kind = Literal["text", "json"]
_GRACE = 0.5
_STARTUP_TIMEOUT = 30.0
_MEMORY_LIMIT = 256 * 1024 * 1024


class ExpressionError(Exception):
    """An evaluation failed or ran over its budget; the message says why (never the payload)."""


def event_data(payload: bytes | str) -> tuple[dict[str, Any], bool]:
    """A payload as the JSON object conditions and templates see, and whether that object is the payload itself.

    A JSON payload that is not an object is wrapped as ``{"value": ...}``; one that is not JSON is ``{}``.
    """
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return {}, False
    return (data, True) if isinstance(data, dict) else ({"value": data}, False)


def event_variables(payload: str, topic: str, subscription: dict[str, str]) -> dict[str, Any]:
    """Names for conditions and templates: the payload's top-level keys, ``event``, ``topic``, ``payload``."""
    data, _ = event_data(payload)
    return {**data, "event": data, "topic": topic, "payload": payload, "subscription": subscription}


@dataclass(frozen=True)
class Job:
    """One action's evaluation: its condition (if any), then every template it needs.

    The message travels as its payload text, parsed in the worker: the event loop never
    builds or encodes the payload's structure.
    """

    payload: str
    topic: str
    subscription: dict[str, str]
    condition: str | None = None
    items: tuple[tuple[Kind, Any], ...] = ()

    def encode(self, budget: float) -> bytes:
        """The job as one line of JSON, with the seconds it may take."""
        fields = {name: getattr(self, name) for name in ("payload", "topic", "subscription", "condition", "items")}
        return json.dumps({**fields, "budget": budget}).encode() + b"\n"


@dataclass(frozen=True)
class Route:
    """Which event a message carries: the value at ``event_field`` (a dotted path) of its JSON payload."""

    payload: str
    event_field: str

    def encode(self, budget: float) -> bytes:
        """The job as one line of JSON, with the seconds it may take."""
        fields = {"payload": self.payload, "event_field": self.event_field, "budget": budget}
        return json.dumps(fields).encode() + b"\n"


@dataclass(frozen=True)
class Routed:
    """A message's event name, and its JSON object as text when that is not the payload itself."""

    event: Any
    wrapped: str | None


def evaluate(job: dict[str, Any], limits: ExpressionLimits) -> dict[str, Any]:
    """Evaluate a job as sent to a worker.

    A :class:`Route` is answered ``{"event": ..., "wrapped": ...}``; a :class:`Job`
    ``{"holds": false}`` or ``{"holds": true, "values": [...]}``.

    Raises:
        Exception: whatever the condition or a template raised (the worker reports it).
    """
    if "event_field" in job:
        data, original = event_data(job["payload"])
        event: Any = data
        for part in str(job["event_field"]).split("."):
            event = event.get(part) if isinstance(event, dict) else None
        return {"event": event, "wrapped": None if original else json.dumps(data)}
    variables = _variables(job["payload"], job["topic"], json.dumps(job["subscription"], sort_keys=True))
    condition = job.get("condition")
    if condition is not None and not _condition(condition).evaluate(variables):
        return {"holds": False}
    values = [
        render(value, variables, limits) if kind == "text" else render_json(value, variables, limits)
        for kind, value in job["items"]
    ]
    return {"holds": True, "values": values}


@lru_cache(maxsize=512)
def _condition(source: str) -> Condition:
    return Condition(source)


@lru_cache(maxsize=1)
def _variables(payload: str, topic: str, subscription: str) -> dict[str, Any]:
    """The actions of one message come one after the other: their payload is parsed once."""
    return event_variables(payload, topic, json.loads(subscription))


class _Worker:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def ask(self, line: bytes) -> bytes:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(line)
        await self.process.stdin.drain()
        return await self.process.stdout.readline()

    def kill(self) -> None:
        """Kill at once (the event loop's child watcher reaps it); its half-done answer must never be read."""
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()


class ExpressionPool:
    """Worker processes that evaluate :class:`Job` objects, at most ``workers`` at once.

    Args:
        workers: Worker processes (each evaluates one job at a time; the others wait in turn).
        timeout: Seconds one evaluation may take; past it the action fails.
        route_timeout: Seconds reading a message's event name may take. Parsing JSON is linear in the payload's
            size, whatever the payload says, so this only bounds the size; it is generous so that a large
            message on a busy machine is not lost.
        limits: Arithmetic and size bounds of the sandbox.
        memory_limit: Bytes of address space a worker may use (a runaway allocation fails instead of swapping).
    """

    def __init__(
        self,
        *,
        workers: int = 1,
        timeout: float = 1.0,
        route_timeout: float = 5.0,
        limits: ExpressionLimits = DEFAULT_LIMITS,
        memory_limit: int = _MEMORY_LIMIT,
    ) -> None:
        self.timeout = timeout
        self.route_timeout = route_timeout
        self.limits = limits
        self._memory_limit = memory_limit
        self._size = workers
        self._idle: asyncio.Queue[_Worker | None] = asyncio.Queue()
        self._all: set[_Worker] = set()
        self._state = "created"

    async def __aenter__(self) -> ExpressionPool:
        if self._state != "created":
            raise StateError(f"an expression pool can be started only once (it is {self._state})")
        self._state = "running"
        for _ in range(self._size):
            self._idle.put_nowait(None)  # started on first use, so a hub without actions runs no worker
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._state = "closed"
        for worker in list(self._all):
            worker.kill()
            await worker.process.wait()
        self._all.clear()

    async def evaluate(self, job: Job) -> list[Any] | None:
        """The rendered items, or None when the condition does not hold.

        Raises:
            ExpressionError: the condition or a template failed, broke a limit or ran out of time.
        """
        reply = await self._ask(job.encode(self.timeout), self.timeout)
        return list(reply["values"]) if reply["holds"] else None

    async def route(self, route: Route) -> Routed:
        """The event name of a message (parsing a payload of any size is kept off the event loop too).

        Raises:
            ExpressionError: the payload could not be read in time.
        """
        reply = await self._ask(route.encode(self.route_timeout), self.route_timeout)
        return Routed(reply["event"], reply["wrapped"])

    async def _ask(self, line: bytes, budget: float) -> dict[str, Any]:
        if self._state != "running":
            raise StateError(f"the expression pool is {self._state}")
        worker = await self._idle.get()
        try:
            if worker is None:
                worker = await self._spawn()
            async with asyncio.timeout(budget + _GRACE):
                answer = await worker.ask(line)
            if not answer:
                raise ExpressionError("the evaluation stopped its worker (out of memory or crashed)")
        except BaseException as exc:  # a worker in an unknown state (late, dead, cancelled) is never reused
            if worker is not None:
                self._retire(worker)
                worker = None
            if isinstance(exc, TimeoutError):
                raise ExpressionError(
                    f"evaluation took longer than {budget:g} s and was stopped (MQTTHUB_INTEGRATION_EXPRESSION_TIMEOUT)"
                ) from None
            raise
        finally:
            self._idle.put_nowait(worker)
        reply: dict[str, Any] = json.loads(answer)
        if "error" in reply:
            raise ExpressionError(str(reply["error"]))
        return reply

    async def _spawn(self) -> _Worker:
        limits = self.limits
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mqtthub.integrations.expression_worker",
            str(limits.max_int_bits),
            str(limits.max_length),
            str(self._memory_limit),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=16 * limits.max_length + 65536,  # a JSON answer: several items, each character escaped
        )
        worker = _Worker(process)
        self._all.add(worker)
        assert process.stdout is not None
        try:
            async with asyncio.timeout(_STARTUP_TIMEOUT):
                ready = await process.stdout.readline()  # imports done: the job's budget is the job's alone
        except BaseException:
            self._retire(worker)
            raise
        if ready != b"ready\n":
            self._retire(worker)
            raise ExpressionError("the expression worker did not start")
        return worker

    def _retire(self, worker: _Worker) -> None:
        self._all.discard(worker)
        worker.kill()
        logger.warning("integrations: an expression worker was stopped and will be replaced")
