"""The cache of accepted credentials: TTL, credential expiry, size bound, forgetting a principal, stale answers."""

from __future__ import annotations

import time

import pytest

from mqtthub.auth.credential_cache import CredentialCache
from mqtthub.broker.hooks import Principal


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


DEVICE = Principal(id="device:1", kind="device")


def test_an_entry_is_trusted_for_its_ttl_only() -> None:
    clock = Clock()
    cache = CredentialCache(10.0, 100, clock=clock)
    cache.put(("device", "1", "hash"), DEVICE, token_id="t1")
    entry = cache.get(("device", "1", "hash"))
    assert entry is not None
    assert (entry.principal, entry.token_id) == (DEVICE, "t1")
    clock.now += 10.0
    assert cache.get(("device", "1", "hash")) is None
    assert len(cache) == 0
    assert (cache.hits, cache.misses) == (1, 1)


def test_an_expired_credential_is_not_served_from_the_cache() -> None:
    cache = CredentialCache(600.0, 100)
    cache.put("key", Principal(id="token:1", kind="app", expires_at=time.time() - 1))
    assert cache.get("key") is None


def test_forgetting_a_principal_drops_all_its_credentials() -> None:
    cache = CredentialCache(600.0, 100)
    cache.put(("device", "1", "first token"), DEVICE)
    cache.put(("device", "1", "second token"), DEVICE)
    other = Principal(id="device:2", kind="device")
    cache.put(("device", "2", "token"), other)
    cache.forget("device:1")
    assert cache.get(("device", "1", "first token")) is None
    assert cache.get(("device", "1", "second token")) is None
    entry = cache.get(("device", "2", "token"))
    assert entry is not None
    assert entry.principal is other
    cache.forget("never cached")


def test_an_answer_looked_up_across_a_forget_is_not_kept() -> None:
    # A lookup that read the token before its revocation committed answers after the revocation's forget.
    cache = CredentialCache(600.0, 100)
    before = cache.epoch
    cache.forget("device:1")
    entry = cache.put(("device", "1", "hash"), DEVICE, token_id="t1", epoch=before)
    assert entry.principal is DEVICE  # the CONNECT in flight is answered
    assert cache.get(("device", "1", "hash")) is None  # but the next one is checked against the database
    cache.clear()
    current = cache.epoch
    cache.put(("device", "1", "hash"), DEVICE, epoch=current)
    assert cache.get(("device", "1", "hash")) is not None


def test_the_oldest_entry_goes_when_full() -> None:
    cache = CredentialCache(600.0, 2)
    for key in ("a", "b", "c"):
        cache.put(key, Principal(id=f"p:{key}", kind="app"))
    assert cache.get("a") is None
    assert cache.get("b") is not None
    assert cache.get("c") is not None
    cache.forget("p:a")  # its index entry went with it
    assert len(cache) == 2


def test_a_zero_ttl_keeps_nothing() -> None:
    cache = CredentialCache(0.0, 100)
    entry = cache.put("key", DEVICE)
    assert entry.principal is DEVICE
    assert cache.get("key") is None
    assert len(cache) == 0


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="ttl"):
        CredentialCache(-1.0, 10)
    with pytest.raises(ValueError, match="max_entries"):
        CredentialCache(1.0, 0)
