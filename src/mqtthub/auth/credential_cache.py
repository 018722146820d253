"""Recently accepted MQTT credentials, so a reconnecting client needs no database query.

An entry maps what the client presented (the token's hash, with the device id for a
device) to the principal it was given, for at most ``ttl`` seconds and never past the
credential's own expiry. Refusals are never cached: a token created a moment ago works at
once.

Revocation stays immediate: every change that disconnects clients goes through
``Broker.invalidate(principal_id)`` (:mod:`mqtthub.auth.live` after a commit, and the
credential revalidator for changes made elsewhere), which calls
:meth:`CredentialCache.forget`. The TTL only bounds what no hub can be told about. A lookup
that read the database before such a change and answers after it must not put its stale answer
back: callers take :attr:`CredentialCache.epoch` before looking up and pass it to
:meth:`CredentialCache.put`, which keeps nothing if anything was forgotten meanwhile.

Entries in use are refreshed ahead of their expiry: the first hit past half the TTL
(:meth:`CredentialCache.refresh_due`) starts a background check of the credential while the
cached answer, still within its TTL, is given. A credential used steadily is then never
looked up while a client waits, and entries stored together (a fleet reconnecting at once)
do not all expire together into a burst of database lookups. A refresh that finds the
credential refused forgets the principal; one that cannot reach the database leaves the entry
to expire at its TTL, as before.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Hashable
from dataclasses import dataclass
from datetime import datetime

from mqtthub.broker.hooks import Principal

logger = logging.getLogger(__name__)
REFRESH_AFTER = 0.5
"""Fraction of the TTL after which a hit starts a background refresh of its entry."""


@dataclass(slots=True)
class CachedCredential:
    """One accepted credential: the principal and, for tokens, what ``last_used_at`` writes need."""

    principal: Principal
    stored_at: float
    token_id: str | None = None
    last_used: datetime | None = None
    """The token's last recorded use (None: never)."""
    refreshing: bool = False
    """A background refresh of this entry has been started."""


class CredentialCache:
    """A bounded TTL map from presented credentials to principals, indexed by principal id.

    Args:
        ttl: Seconds an entry is trusted; 0 disables the cache.
        max_entries: Entries kept; overflow policy: drop the oldest.
        clock: Monotonic seconds (a parameter for tests).
    """

    def __init__(self, ttl: float, max_entries: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if ttl < 0 or max_entries < 1:
            raise ValueError("the credential cache needs ttl >= 0 and max_entries >= 1")
        self._ttl = ttl
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[Hashable, CachedCredential] = {}
        self._by_principal: dict[str, set[Hashable]] = {}
        self.hits = 0
        self.misses = 0
        self.refreshes = 0
        """Background refreshes started."""
        self.epoch = 0
        """How many times something was forgotten: taken before a lookup, handed to :meth:`put` after it."""
        self._refreshing: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> CachedCredential | None:
        """The entry for ``key`` if it is still fresh and its credential has not expired."""
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        expires_at = entry.principal.expires_at
        if self._clock() - entry.stored_at >= self._ttl or (expires_at is not None and time.time() >= expires_at):
            self._drop(key)
            self.misses += 1
            return None
        self.hits += 1
        return entry

    def put(
        self,
        key: Hashable,
        principal: Principal,
        *,
        token_id: str | None = None,
        last_used: datetime | None = None,
        epoch: int | None = None,
    ) -> CachedCredential:
        """Remember an accepted credential; return its entry.

        It is not kept when the TTL is 0, nor when ``epoch`` (:attr:`epoch` before the lookup that found it) is
        past: something was forgotten since, maybe this very credential, and the lookup may have read it before.
        """
        entry = CachedCredential(principal, self._clock(), token_id, last_used)
        if self._ttl <= 0 or (epoch is not None and epoch != self.epoch):
            return entry
        self._drop(key)
        while len(self._entries) >= self._max_entries:
            self._drop(next(iter(self._entries)))
        self._entries[key] = entry
        self._by_principal.setdefault(principal.id, set()).add(key)
        return entry

    def refresh_due(self, entry: CachedCredential) -> bool:
        """True once per entry, on the first hit past half its TTL: the caller refreshes it (:meth:`refresh`)."""
        if entry.refreshing or self._clock() - entry.stored_at < self._ttl * REFRESH_AFTER:
            return False
        entry.refreshing = True
        return True

    def refresh(self, check: Coroutine[None, None, None]) -> None:
        """Run ``check`` (which puts a fresh entry, or forgets the principal) in the background."""
        self.refreshes += 1
        task = asyncio.get_running_loop().create_task(self._run_refresh(check))
        self._refreshing.add(task)
        task.add_done_callback(self._refreshing.discard)

    async def _run_refresh(self, check: Coroutine[None, None, None]) -> None:
        try:
            await check
        except Exception as exc:  # the database is away: the entry expires at its TTL, as without a refresh
            logger.debug("credential refresh failed: %s: %s", type(exc).__name__, exc)

    async def settle(self) -> None:
        """Wait for the refreshes under way (before the database closes)."""
        while self._refreshing:
            await asyncio.gather(*self._refreshing, return_exceptions=True)

    def forget(self, principal_id: str) -> None:
        """Drop every entry of a principal (its credential or rights changed)."""
        self.epoch += 1
        for key in self._by_principal.pop(principal_id, ()):
            self._entries.pop(key, None)

    def clear(self) -> None:
        """Drop everything."""
        self.epoch += 1
        self._entries.clear()
        self._by_principal.clear()

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        keys = self._by_principal.get(entry.principal.id)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_principal[entry.principal.id]
