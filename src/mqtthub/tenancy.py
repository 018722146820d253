"""Organizations inside the one broker: the home of the topic namespace and of filter coverage.

Every client of an organization (its devices, API tokens, users and certificates) is mounted at
``org/{short_id}/``: the broker prepends that prefix to every topic it publishes or subscribes to, so two
organizations cannot name each other's topics (isolation by construction, not by filtering). Platform
administrators work in the global namespace, where every organization's topics appear under their prefixes.

Everything that maps between an organization's topics and the broker's full topics, or decides whether one
topic filter lies within another (token permissions, operator rules, stream access), asks this module.
"""

from __future__ import annotations

ORG_PREFIX = "org"
"""The first level of every organization's namespace."""


def namespace_prefix(short_id: str) -> str:
    """The broker mountpoint of an organization: ``org/<short_id>/``."""
    return f"{ORG_PREFIX}/{short_id}/"


def short_id_of(mountpoint: str) -> str | None:
    """The organization short id of a mountpoint made by :func:`namespace_prefix`; None for any other."""
    head, _, rest = mountpoint.partition("/")
    short_id, _, tail = rest.partition("/")
    return short_id if head == ORG_PREFIX and short_id and not tail and mountpoint.endswith("/") else None


def filter_within(requested: str, allowed: str) -> bool:
    """Whether every topic matched by ``requested`` is matched by ``allowed`` (both valid filters).

    Level by level: ``#`` in ``allowed`` covers the rest; ``+`` in ``allowed`` covers any
    single level (a ``+`` too) but not ``#``; a literal covers only itself. A filter whose
    first level is a wildcard never covers ``$``-topics [MQTT-4.7.2-1].
    """
    requested_levels = requested.split("/")
    allowed_levels = allowed.split("/")
    if requested_levels[0].startswith("$") and allowed_levels[0] in ("+", "#"):
        return False
    for index, level in enumerate(allowed_levels):
        if level == "#":
            return True
        if index >= len(requested_levels):
            return False
        wanted = requested_levels[index]
        if wanted == "#":
            return False
        if level != "+" and level != wanted:
            return False
    return len(requested_levels) == len(allowed_levels)
