"""The bounded password workers and the login guard's per-address bound on checks in flight."""

from __future__ import annotations

import asyncio

import pytest

from mqtthub.auth.attempts import LoginGuard
from mqtthub.auth.passwords import PasswordWorkers, hash_password
from mqtthub.errors import RateLimitedError, StateError, UnavailableError


async def test_verify_matches_only_the_right_password_and_never_an_unknown_account() -> None:
    async with PasswordWorkers(threads=1, max_pending=4) as workers:
        stored = await workers.hash("correct horse")
        assert await workers.verify(stored, "correct horse")
        assert not await workers.verify(stored, "wrong horse")
        assert not await workers.verify(None, "correct horse")
        assert not await workers.verify("not a hash", "correct horse")
        assert workers.pending == 0


async def test_calls_beyond_max_pending_are_refused_at_once() -> None:
    stored = hash_password("pw")
    async with PasswordWorkers(threads=1, max_pending=2) as workers:
        results = await asyncio.gather(*(workers.verify(stored, "pw") for _ in range(5)), return_exceptions=True)
        assert results.count(True) == 2
        assert sum(isinstance(result, UnavailableError) for result in results) == 3
        assert workers.refused == 3
        assert workers.pending == 0
    with pytest.raises(StateError):
        await workers.verify(stored, "pw")


def test_guard_bounds_checks_in_flight_per_address() -> None:
    guard = LoginGuard(per_account=10, per_address=10, window=60, pending_per_address=2)
    with guard.checking("10.0.0.1"), guard.checking("10.0.0.1"):
        with pytest.raises(UnavailableError), guard.checking("10.0.0.1"):
            pass
        with guard.checking("10.0.0.2"):
            pass
    with guard.checking("10.0.0.1"):
        pass


def test_guard_limits_attempts_per_account_and_forgets_them_on_success() -> None:
    guard = LoginGuard(per_account=2, per_address=100, window=60, pending_per_address=1)
    guard.admit("admin@x", "10.0.0.1")
    guard.admit("admin@x", "10.0.0.2")
    with pytest.raises(RateLimitedError) as limited:
        guard.admit("admin@x", "10.0.0.3")
    assert limited.value.retry_after > 0
    guard.succeeded("admin@x")
    guard.admit("admin@x", "10.0.0.3")
