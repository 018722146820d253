"""What an install of mqtthub with some extras brings, read from the installed distributions' metadata.

The test environment holds more (pytest, the test extra): the README's Python blocks run with everything else
hidden, so a snippet that needs a package the documented install does not bring fails here as it would for a reader.
"""

from __future__ import annotations

from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def distributions_of(project: str, extras: tuple[str, ...]) -> set[str]:
    """Canonical names of ``project`` with ``extras`` and everything it requires, transitively (as installed)."""
    brought: set[str] = set()
    visited: set[tuple[str, str]] = set()
    pending = [(project, extra) for extra in ("", *extras)]
    while pending:
        name, extra = pending.pop()
        key = (canonicalize_name(name), extra)
        if key in visited:
            continue
        visited.add(key)
        try:
            requirements = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue  # required only on other platforms or Python versions
        brought.add(key[0])
        for text in requirements:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": extra}):
                pending += [(requirement.name, wanted) for wanted in ("", *requirement.extras)]
    return brought


def modules_outside(project: str, extras: tuple[str, ...]) -> list[str]:
    """Top-level modules installed here that only distributions outside ``project[extras]`` provide."""
    brought = distributions_of(project, extras)
    return sorted(
        module
        for module, providers in metadata.packages_distributions().items()
        if not brought & {canonicalize_name(provider) for provider in providers}
    )
