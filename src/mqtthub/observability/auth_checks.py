"""Authentication checks of the HTTP API, counted by credential kind and result for ``/metrics``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from mqtthub.errors import PermissionDeniedError, UnauthenticatedError


class AuthChecks:
    """Counts of ``(kind, result)``: kind ``password``, ``session_token``, ``api_token`` or ``none``;
    result ``accepted`` or ``refused``.
    """

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()

    def refused(self, kind: str) -> None:
        """A check of ``kind`` failed (or no credentials were given, kind ``none``)."""
        self.counts[(kind, "refused")] += 1

    @contextmanager
    def check(self, kind: str) -> Iterator[None]:
        """Count the block as one check: refused when it raises :class:`UnauthenticatedError`, else accepted.

        A :class:`PermissionDeniedError` means the credentials were good and the rights short, so it
        counts as accepted; any other error is not an answer about the credentials and is not counted.
        """
        try:
            yield
        except UnauthenticatedError:
            self.refused(kind)
            raise
        except PermissionDeniedError:
            self.counts[(kind, "accepted")] += 1
            raise
        self.counts[(kind, "accepted")] += 1
