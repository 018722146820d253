"""Password hashing with argon2id, and the bounded pool of threads that runs it.

argon2 is slow on purpose (tens of milliseconds of CPU and 64 MiB per call). Run on the event
loop, a burst of wrong passwords would freeze every connection of the hub, so every check done
while serving goes through :class:`PasswordWorkers`: a few threads (argon2-cffi releases the GIL
while it works) and a bounded number of calls waiting for them. A call beyond that bound is refused
at once as busy instead of queueing without limit. On Linux the threads also run at the lowest CPU
priority (nice 19, inherited by argon2's own lane threads): on a busy machine the event loop, which
serves every connection, gets the processor first and a password check waits instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from mqtthub.config import Settings
from mqtthub.errors import StateError, UnavailableError

_hasher = PasswordHasher()
_T = TypeVar("_T")


def hash_password(password: str) -> str:
    """An argon2id hash of ``password``, with its salt and parameters encoded in it."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches; never raises for a wrong password or a corrupt hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def _unknown_user_hash() -> str:
    return hash_password("mqtthub: no such user")


def _lower_priority() -> None:
    # Linux keeps a nice value per thread, so this leaves the rest of the process alone; elsewhere
    # PRIO_PROCESS would name the whole process, so nothing is changed.
    if sys.platform == "linux":
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


def _verify_known(password_hash: str | None, password: str) -> bool:
    # An unknown account verifies a fixed hash, so it costs as much time as a wrong password.
    if password_hash is None:
        verify_password(_unknown_user_hash(), password)
        return False
    return verify_password(password_hash, password)


class PasswordWorkers:
    """Hashes and verifies passwords on ``threads`` threads, at most ``max_pending`` calls at a time.

    Args:
        threads: Threads running argon2 (each call takes one for its whole duration).
        max_pending: Calls running or waiting for a thread; one more raises :class:`UnavailableError`.
    """

    def __init__(self, *, threads: int, max_pending: int) -> None:
        if threads < 1 or max_pending < 1:
            raise ValueError("threads and max_pending must be at least 1")
        self.max_pending = max_pending
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="mqtthub-password", initializer=_lower_priority)
        self._pending = 0
        self._closed = False
        self.refused = 0
        """Calls refused because ``max_pending`` were already pending."""

    @classmethod
    def from_settings(cls, settings: Settings) -> PasswordWorkers:
        """A pool sized as configured."""
        return cls(threads=settings.password_hash_threads, max_pending=settings.password_checks_pending)

    @property
    def pending(self) -> int:
        """Calls running or waiting now."""
        return self._pending

    async def __aenter__(self) -> PasswordWorkers:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the threads after the calls already accepted; later calls raise :class:`StateError`."""
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def hash(self, password: str) -> str:
        """An argon2id hash of ``password``, computed off the event loop.

        Raises:
            UnavailableError: ``max_pending`` calls are pending already.
        """
        return await self._run(functools.partial(hash_password, password))

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether ``password`` matches ``password_hash``, checked off the event loop.

        With no hash (an unknown account) a fixed hash is verified instead, so a wrong account name
        costs as much time as a wrong password and the answer's timing reveals nothing.

        Raises:
            UnavailableError: ``max_pending`` calls are pending already.
        """
        return await self._run(functools.partial(_verify_known, password_hash, password))

    async def _run(self, call: Callable[[], _T]) -> _T:
        # Counted on the event loop only, so no lock is needed.
        if self._closed:
            raise StateError("the password workers are closed")
        if self._pending >= self.max_pending:
            self.refused += 1
            raise UnavailableError("too many password checks at once; try again shortly")
        self._pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, call)
        finally:
            self._pending -= 1
