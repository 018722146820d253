"""Recently accepted MQTT credentials, so a reconnecting client needs no database query.

An entry maps what the client presented (the token's hash, with the device id for a
device) to the principal it was given, for at most ``ttl`` seconds and never past the
credential's own expiry. Refusals are never cached: a token created a moment ago works at
once.

Revocation stays immediate: every change that disconnects clients goes through
``Broker.invalidate(principal_id)`` (:mod:`mqtthub.auth.live` after a commit, and the
credential revalidator for changes made elsewhere), which calls
:meth:`CredentialCache.forget`. The TTL only bounds what no hub can be told about.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime

from mqtthub.broker.hooks import Principal


@dataclass(slots=True)
class CachedCredential:
    """One accepted credential: the principal and, for tokens, what ``last_used_at`` writes need."""

    principal: Principal
    stored_at: float
    token_id: str | None = None
    last_used: datetime | None = None
    """The token's last recorded use (None: never)."""


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
        self, key: Hashable, principal: Principal, *, token_id: str | None = None, last_used: datetime | None = None
    ) -> CachedCredential:
        """Remember an accepted credential (not kept when the TTL is 0); return its entry."""
        entry = CachedCredential(principal, self._clock(), token_id, last_used)
        if self._ttl <= 0:
            return entry
        self._drop(key)
        while len(self._entries) >= self._max_entries:
            self._drop(next(iter(self._entries)))
        self._entries[key] = entry
        self._by_principal.setdefault(principal.id, set()).add(key)
        return entry

    def forget(self, principal_id: str) -> None:
        """Drop every entry of a principal (its credential or rights changed)."""
        for key in self._by_principal.pop(principal_id, ()):
            self._entries.pop(key, None)

    def clear(self) -> None:
        """Drop everything."""
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
