"""The limits on password logins, shared by HTTP login and MQTT logins with an e-mail and password.

Attempts are counted per account (the e-mail) and per client address over a sliding window;
beyond either limit an attempt is refused before the password is even checked. A successful
login clears its account's count, so a user who mistypes a few times is not locked out after
getting it right. Both doors to an account count against the same limits: guessing over MQTT
locks the account out of HTTP login too, and the reverse.

Password checks in flight are bounded as well: at most ``pending_per_address`` from one address
at a time (the overall bound is :class:`~mqtthub.auth.passwords.PasswordWorkers`'), so one address
cannot take every worker.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from mqtthub.auth.ratelimit import SlidingWindowLimiter
from mqtthub.broker.episodes import EpisodeLog
from mqtthub.config import Settings
from mqtthub.errors import RateLimitedError, UnavailableError

logger = logging.getLogger(__name__)
# A guessing storm is logged once per episode and address, not once per attempt.
_episodes = EpisodeLog()


class LoginGuard:
    """The per-account and per-address attempt limits, and the per-address bound on checks in flight."""

    def __init__(self, *, per_account: int, per_address: int, window: float, pending_per_address: int) -> None:
        if pending_per_address < 1:
            raise ValueError("pending_per_address must be at least 1")
        self.accounts = SlidingWindowLimiter(per_account, window)
        self.addresses = SlidingWindowLimiter(per_address, window)
        self.pending_per_address = pending_per_address
        self._pending: Counter[str] = Counter()

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginGuard:
        """Limits as configured."""
        return cls(
            per_account=settings.login_attempts_per_account,
            per_address=settings.login_attempts_per_address,
            window=settings.login_window_seconds,
            pending_per_address=settings.password_checks_per_address,
        )

    def admit(self, account: str, address: str) -> None:
        """Count an attempt, or refuse it when either limit is reached.

        Raises:
            RateLimitedError: too many recent attempts for the account or from the address.
        """
        wait = max(self.accounts.retry_after(account), self.addresses.retry_after(address))
        if wait > 0:
            _episodes(logger, logging.WARNING, ("limited", address), "login attempts limited from %s", address)
            raise RateLimitedError("too many login attempts; try again later", retry_after=wait)
        self.accounts.hit(account)
        self.addresses.hit(address)

    def succeeded(self, account: str) -> None:
        """Forget the account's attempts after a successful login."""
        self.accounts.reset(account)

    @contextmanager
    def checking(self, address: str) -> Iterator[None]:
        """Hold one of the address's slots for a password check in flight.

        Raises:
            UnavailableError: the address has ``pending_per_address`` checks in flight already.
        """
        if self._pending[address] >= self.pending_per_address:
            _episodes(
                logger,
                logging.WARNING,
                ("busy", address),
                "password checks from %s refused: too many in flight",
                address,
            )
            raise UnavailableError("too many password checks from this address at once; try again shortly")
        self._pending[address] += 1
        try:
            yield
        finally:
            self._pending[address] -= 1
            if not self._pending[address]:
                del self._pending[address]
