"""The expression worker pool: answers, limits, time budget, a killed worker replaced, usage after close."""

from __future__ import annotations

import json

import pytest

from mqtthub.errors import StateError
from mqtthub.integrations.expressions import ExpressionError, ExpressionPool, Job, Route, Routed, event_variables
from mqtthub.integrations.templates import ExpressionLimits

PAYLOAD = json.dumps({"event": "paid", "amount": 12.5, "a": 9, "b": 4782969, "big": list(range(20000))})
SUBSCRIPTION = {"id": "s1", "name": "paid"}


def job(condition: str | None = None, *items: tuple[str, object], payload: str = PAYLOAD) -> Job:
    return Job(payload, "t/1", SUBSCRIPTION, condition, items)  # type: ignore[arg-type]


def test_event_variables_name_the_payload_its_keys_and_the_topic() -> None:
    variables = event_variables('{"x": 1}', "a/b", SUBSCRIPTION)
    assert variables == {"x": 1, "event": {"x": 1}, "topic": "a/b", "payload": '{"x": 1}', "subscription": SUBSCRIPTION}
    assert event_variables("[1]", "a", SUBSCRIPTION)["event"] == {"value": [1]}
    assert event_variables("not json", "a", SUBSCRIPTION)["event"] == {}
    assert event_variables("[" * 100_000 + "]" * 100_000, "a", SUBSCRIPTION)["event"] == {}


async def test_the_event_name_is_read_in_a_worker() -> None:
    async with ExpressionPool(timeout=5.0) as pool:
        assert await pool.route(Route(PAYLOAD, "event")) == Routed("paid", None)
        assert await pool.route(Route('{"meta": {"kind": "x"}}', "meta.kind")) == Routed("x", None)
        assert await pool.route(Route("[1, 2]", "event")) == Routed(None, '{"value": [1, 2]}')
        assert await pool.route(Route("not json", "event")) == Routed(None, "{}")
    big = json.dumps({"event": "big", "items": [{"k": i} for i in range(50_000)]})
    async with ExpressionPool(timeout=0.001, route_timeout=30.0) as pool:  # reading has its own, generous budget
        assert await pool.route(Route(big, "event")) == Routed("big", None)


async def test_conditions_and_templates_are_evaluated_in_a_worker() -> None:
    async with ExpressionPool(timeout=5.0) as pool:
        assert await pool.evaluate(job("amount > 100", ("text", "x"))) is None
        rendered = await pool.evaluate(
            job("amount > 10", ("text", "{{ topic }}:{{ event.amount }}"), ("json", {"n": "{{ amount }}"}))
        )
        assert rendered == ["t/1:12.5", {"n": 12.5}]


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{{ (event.a ** event.b) > 1 }}", "integer limit of 4096 bits"),
        ("{{ ('x' * 10**8)|length }}", "length limit of 1048576"),
        ("{{ 'x'.ljust(10**9) }}", "larger than the limit"),
        ("{{ event.__class__.__mro__[1].__subclasses__() }}", "SecurityError"),
    ],
)
async def test_growing_templates_fail_with_a_reason(template: str, reason: str) -> None:
    async with ExpressionPool(timeout=5.0) as pool:
        with pytest.raises(ExpressionError, match=reason):
            await pool.evaluate(job(None, ("text", template)))
        assert await pool.evaluate(job(None, ("text", "{{ amount }}"))) == ["12.5"]  # the worker goes on


async def test_output_and_memory_are_bounded() -> None:
    limits = ExpressionLimits(max_length=10_000)
    async with ExpressionPool(timeout=5.0, limits=limits, memory_limit=200 * 1024 * 1024) as pool:
        with pytest.raises(ExpressionError, match="exceeds the limit of 10000"):
            await pool.evaluate(job(None, ("text", "{% for i in range(5000) %}xyz{% endfor %}")))
        doubling = "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}"
        with pytest.raises(ExpressionError, match="memory"):
            await pool.evaluate(job(None, ("text", doubling + "{{ ns.s|length }}")))
        assert await pool.evaluate(job(None, ("text", "ok"))) == ["ok"]


async def test_a_slow_evaluation_is_stopped_and_the_pool_goes_on() -> None:
    slow = " or ".join(["a == b"] * 100)  # each comparison walks two long lists of objects
    async with ExpressionPool(timeout=0.05) as pool:
        loops = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
        with pytest.raises(ExpressionError, match=r"took longer than 0\.05 s"):
            await pool.evaluate(job(None, ("text", loops)))
        items = [{"k": i} for i in range(20000)]
        payload = json.dumps({"a": items, "b": [*items[:-1], {"k": -1}]})
        with pytest.raises(ExpressionError, match=r"took longer than 0\.05 s"):
            await pool.evaluate(job(slow, payload=payload))
        assert await pool.evaluate(job(None, ("text", "{{ 1 + 1 }}"))) == ["2"]


async def test_a_worker_that_does_not_answer_is_killed_and_replaced() -> None:
    loose = ExpressionLimits(max_int_bits=10**9)  # one long C-level power: the timer signal waits for its end
    async with ExpressionPool(timeout=0.05, limits=loose) as pool:
        with pytest.raises(ExpressionError, match=r"took longer than 0\.05 s and was stopped"):
            await pool.evaluate(job(None, ("text", "{{ (7 ** 30000000) % 10 }}")))
        assert await pool.evaluate(job(None, ("text", "{{ 2 * 3 }}"))) == ["6"]


async def test_the_pool_is_used_only_while_open() -> None:
    pool = ExpressionPool()
    with pytest.raises(StateError, match="created"):
        await pool.evaluate(job())
    async with pool:
        pass
    with pytest.raises(StateError, match="closed"):
        await pool.evaluate(job())
    with pytest.raises(StateError, match="only once"):
        await pool.__aenter__()
