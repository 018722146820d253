"""The operator's rules file: what anonymous clients and the global namespace may publish, subscribe and read.

The built-in rules (:mod:`mqtthub.auth.acl`) let anonymous clients and platform administrators (the only
principals in the global namespace) use every topic. ``MQTTHUB_MQTT_RULES_FILE`` narrows that down with a
plain text file, one rule per line::

    # who        verdict  action     topic filter
    anonymous    allow    subscribe  sensors/#
    anonymous    deny     subscribe  #
    anonymous    deny     publish    config/#
    global       deny     retained   org/+/secrets/#

- *who*: ``anonymous`` (clients without credentials, inside the default organization's namespace, so their
  topics are written as they see them) or ``global`` (the global namespace: topics as the broker sees them,
  ``org/<short id>/…``).
- *verdict*: ``allow`` or ``deny``. *action*: ``publish``, ``subscribe`` or ``retained`` (receive the
  retained messages of a topic when subscribing).
- For each request the rules of its principal and action are read top to bottom and the first that matches
  decides; when none matches the request is allowed. ``publish`` and ``retained`` rules match a topic name
  by the filter. A ``subscribe`` rule that allows matches a filter lying within its own (``sensors/a/#``
  within ``sensors/#``); one that denies matches every filter that could receive one of its topics
  (``deny subscribe secret/#`` refuses ``secret/x``, ``+/x`` and ``#`` alike), since a subscription is
  decided once, when it is made.
- Blank lines and lines starting with ``#`` are ignored; anything else that is not a rule is an error
  with its line number.

:class:`RulesFile` reads the file and checks it for changes (modification time, size, inode) every
``interval`` seconds; a file that no longer parses, or has gone, leaves the last good rules in force and is
logged.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mqtthub.broker.handle import BrokerHandle
from mqtthub.broker.hooks import Action, Principal
from mqtthub.errors import ConfigurationError, MQTTHubError
from mqtthub.mqtt.topics import topic_matches, validate_topic_filter
from mqtthub.tenancy import filter_within

logger = logging.getLogger(__name__)

SUBJECTS = ("anonymous", "global")
_ACTIONS = {action.value: action for action in Action}


@dataclass(frozen=True, slots=True)
class Rule:
    """One line of the rules file."""

    subject: str
    allow: bool
    action: Action
    pattern: str
    line: int

    def matches(self, topic: str) -> bool:
        """Whether this rule decides a request on ``topic`` (a name, or a filter for ``subscribe``)."""
        if self.action is not Action.SUBSCRIBE:
            return topic_matches(self.pattern, topic)
        if self.allow:
            return filter_within(topic, self.pattern)
        return filters_overlap(topic, self.pattern)


@dataclass(frozen=True, slots=True)
class OperatorRules:
    """The parsed rules file; the empty set allows everything."""

    rules: tuple[Rule, ...] = ()

    def subjects(self) -> set[str]:
        """The subjects that have at least one rule."""
        return {rule.subject for rule in self.rules}

    def for_subject(self, subject: str) -> tuple[Rule, ...]:
        """The rules of one subject, in file order."""
        return tuple(rule for rule in self.rules if rule.subject == subject)

    def allows(self, principal: Principal, action: Action, topic: str) -> bool:
        """The first matching rule's verdict for this request; allowed when no rule matches."""
        subject = subject_of(principal)
        if subject is None:
            return True
        for rule in self.rules:
            if rule.subject == subject and rule.action is action and rule.matches(topic):
                return rule.allow
        return True


def subject_of(principal: Principal) -> str | None:
    """The rules-file subject a principal falls under, if any."""
    if principal.kind == "anonymous":
        return "anonymous"
    if not principal.mountpoint:
        return "global"
    return None


def filters_overlap(first: str, second: str) -> bool:
    """Whether some topic name matches both filters (both valid, non-shared) [MQTT-4.7]."""
    a, b = first.split("/"), second.split("/")
    # A filter starting with a wildcard never matches a "$" topic [MQTT-4.7.2-1].
    if (a[0].startswith("$") and b[0] in ("+", "#")) or (b[0].startswith("$") and a[0] in ("+", "#")):
        return False
    for left, right in zip(a, b, strict=False):
        if left == "#" or right == "#":
            return True
        if left != "+" and right != "+" and left != right:
            return False
    if len(a) == len(b):
        return True
    # One filter is longer: it still overlaps if the shorter one's next level would be a "#" (parent level).
    longer = a if len(a) > len(b) else b
    return longer[min(len(a), len(b))] == "#"


def parse_rules(text: str, source: str = "rules file") -> OperatorRules:
    """Parse the rules file format described in the module docstring.

    Raises:
        ConfigurationError: A line that is not a valid rule (the message names ``source`` and the line).
    """
    rules: list[Rule] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        where = f"{source}, line {number}"
        if len(fields) != 4:
            raise ConfigurationError(f"{where}: expected '<who> <allow|deny> <action> <topic filter>'")
        subject, verdict, action_name, pattern = fields
        if subject not in SUBJECTS:
            raise ConfigurationError(f"{where}: who must be one of {', '.join(SUBJECTS)}, not {subject!r}")
        if verdict not in ("allow", "deny"):
            raise ConfigurationError(f"{where}: verdict must be allow or deny, not {verdict!r}")
        action = _ACTIONS.get(action_name)
        if action is None:
            raise ConfigurationError(f"{where}: action must be one of {', '.join(_ACTIONS)}, not {action_name!r}")
        try:
            validate_topic_filter(pattern)
        except MQTTHubError as exc:
            raise ConfigurationError(f"{where}: invalid topic filter {pattern!r}: {exc.message}") from None
        rules.append(Rule(subject, verdict == "allow", action, pattern, number))
    return OperatorRules(tuple(rules))


def invalidate_changed(broker: BrokerHandle, old: OperatorRules, new: OperatorRules) -> int:
    """Make the broker ask again for the clients whose rules changed; return how many principals.

    Cached answers are dropped and existing subscriptions are checked again, so a new ``deny`` also
    ends subscriptions made before it (:meth:`BrokerHandle.invalidate`).
    """
    changed = {subject for subject in SUBJECTS if old.for_subject(subject) != new.for_subject(subject)}
    if not changed:
        return 0
    principal_ids = {principal.id for _, principal in broker.clients() if subject_of(principal) in changed}
    if "anonymous" in changed:
        principal_ids.add("anonymous")  # every anonymous client shares it, offline sessions included
    for principal_id in principal_ids:
        broker.invalidate(principal_id)
    return len(principal_ids)


_Signature = tuple[int, int, int]


class RulesFile:
    """The rules file and its live reload (see the module docstring).

    Args:
        path: The rules file.
        interval: Seconds between checks for a change.
        on_change: Called with the old and the new rules after a successful reload.
    """

    def __init__(
        self, path: Path, *, interval: float, on_change: Callable[[OperatorRules, OperatorRules], None]
    ) -> None:
        self.path = path
        self.interval = interval
        self._on_change = on_change
        self._signature: _Signature | None = None
        self.rules = OperatorRules()
        self.reloads = 0
        """Successful reloads after the first load."""
        self.failures = 0
        """Changes that could not be applied (unreadable or invalid file)."""

    def load(self) -> OperatorRules:
        """Read the file for the first time.

        Raises:
            ConfigurationError: The file is missing, unreadable or invalid (the hub does not start).
        """
        try:
            self._signature = self._stat()
            self.rules = parse_rules(self.path.read_text(encoding="utf-8"), str(self.path))
        except OSError as exc:
            raise ConfigurationError(f"cannot read the MQTT rules file {self.path}: {exc.strerror}") from exc
        logger.info("MQTT rules file %s: %d rule(s)", self.path, len(self.rules.rules))
        return self.rules

    def check(self) -> bool:
        """Reload if the file changed; True if new rules took effect."""
        try:
            signature = self._stat()
        except OSError as exc:
            if self._signature is not None:
                logger.error("MQTT rules file %s unreadable (%s); the last rules stay in force", self.path, exc)
                self.failures += 1
                self._signature = None
            return False
        if signature == self._signature:
            return False
        self._signature = signature
        try:
            rules = parse_rules(self.path.read_text(encoding="utf-8"), str(self.path))
        except (OSError, UnicodeDecodeError, ConfigurationError) as exc:
            self.failures += 1
            logger.error("MQTT rules file not reloaded, the last rules stay in force: %s", exc)
            return False
        old, self.rules = self.rules, rules
        self.reloads += 1
        logger.info("MQTT rules file %s reloaded: %d rule(s)", self.path, len(rules.rules))
        self._on_change(old, rules)
        return True

    async def watch(self) -> None:
        """Check for changes every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            self.check()

    def _stat(self) -> _Signature:
        stat = os.stat(self.path)
        return (stat.st_mtime_ns, stat.st_size, stat.st_ino)
