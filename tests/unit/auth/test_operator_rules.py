"""The operator rules file: its format, first-match semantics, filter overlap and live reload."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mqtthub.auth.operator_rules import OperatorRules, RulesFile, filters_overlap, parse_rules
from mqtthub.broker.hooks import Action, Principal
from mqtthub.errors import ConfigurationError

ANONYMOUS = Principal(id="anonymous", kind="anonymous", mountpoint="org/abc/")
ADMIN = Principal(id="user:1", kind="admin")
DEVICE = Principal(id="device:1", kind="device", mountpoint="org/abc/")

RULES = """
# anonymous clients read sensors only
anonymous  allow  subscribe  sensors/#
anonymous  deny   subscribe  #
anonymous  deny   publish    config/#
anonymous  deny   retained   sensors/private/#

global     deny   publish    org/+/config/#
"""


@pytest.mark.parametrize(
    ("principal", "action", "topic", "allowed"),
    [
        (ANONYMOUS, Action.SUBSCRIBE, "sensors/#", True),
        (ANONYMOUS, Action.SUBSCRIBE, "sensors/a/+", True),  # within the allowed filter
        (ANONYMOUS, Action.SUBSCRIBE, "#", False),  # not within it; the deny that follows matches
        (ANONYMOUS, Action.SUBSCRIBE, "other/x", False),
        (ANONYMOUS, Action.PUBLISH, "config/x", False),
        (ANONYMOUS, Action.PUBLISH, "sensors/x", True),  # no publish rule matches
        (ANONYMOUS, Action.RETAINED, "sensors/private/a", False),
        (ANONYMOUS, Action.RETAINED, "sensors/public/a", True),
        (ADMIN, Action.PUBLISH, "org/abc/config/x", False),
        (ADMIN, Action.PUBLISH, "org/abc/sensors/x", True),
        (ADMIN, Action.SUBSCRIBE, "#", True),  # no global subscribe rule
        (DEVICE, Action.PUBLISH, "config/x", True),  # neither anonymous nor global: not concerned
        (DEVICE, Action.SUBSCRIBE, "#", True),
    ],
)
def test_first_matching_rule_decides(principal: Principal, action: Action, topic: str, allowed: bool) -> None:
    assert parse_rules(RULES).allows(principal, action, topic) is allowed


def test_empty_rules_allow_everything() -> None:
    assert OperatorRules().allows(ANONYMOUS, Action.SUBSCRIBE, "#")
    assert parse_rules("# nothing but a comment\n\n").rules == ()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("anonymous deny publish", "expected"),
        ("everyone deny publish a", "who must be one of"),
        ("anonymous maybe publish a", "verdict must be allow or deny"),
        ("anonymous deny read a", "action must be one of"),
        ("anonymous deny publish a/#/b", "invalid topic filter"),
    ],
)
def test_invalid_lines_are_reported_with_their_number(line: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=rf"rules\.txt, line 2: {message}"):
        parse_rules(f"# header\n{line}\n", "rules.txt")


@pytest.mark.parametrize(
    ("first", "second", "overlap"),
    [
        ("#", "secret/#", True),
        ("+/x", "secret/#", True),
        ("secret/x", "secret/#", True),
        ("secret", "secret/#", True),  # "#" also matches its parent level
        ("public/#", "secret/#", False),
        ("a/+", "a", False),
        ("a/+/c", "a/b/+", True),
        ("a/b/c", "a/b", False),
        ("#", "$SYS/#", False),  # wildcards at the first level never match "$" topics
        ("$SYS/+", "$SYS/broker", True),
    ],
)
def test_filters_overlap(first: str, second: str, overlap: bool) -> None:
    assert filters_overlap(first, second) is overlap
    assert filters_overlap(second, first) is overlap


def _write(path: Path, text: str, stamp: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(stamp, stamp))  # a distinct modification time, however coarse the file system's clock


def test_reload_applies_good_files_and_keeps_the_last_rules_otherwise(tmp_path: Path) -> None:
    path = tmp_path / "rules"
    _write(path, "anonymous deny publish a/#\n", 1_000_000_000)
    changes: list[tuple[OperatorRules, OperatorRules]] = []
    rules_file = RulesFile(path, interval=1, on_change=lambda old, new: changes.append((old, new)))
    first = rules_file.load()
    assert not first.allows(ANONYMOUS, Action.PUBLISH, "a/1")
    assert not rules_file.check()  # unchanged

    _write(path, "anonymous deny publish b/#\n", 2_000_000_000)
    assert rules_file.check()
    assert rules_file.rules.allows(ANONYMOUS, Action.PUBLISH, "a/1")
    assert not rules_file.rules.allows(ANONYMOUS, Action.PUBLISH, "b/1")
    assert changes == [(first, rules_file.rules)]

    _write(path, "anonymous deny nonsense\n", 3_000_000_000)
    assert not rules_file.check()
    assert not rules_file.rules.allows(ANONYMOUS, Action.PUBLISH, "b/1")  # the last good rules stay
    path.unlink()
    assert not rules_file.check()
    assert rules_file.failures == 2
    _write(path, "", 4_000_000_000)
    assert rules_file.check()
    assert rules_file.rules.allows(ANONYMOUS, Action.PUBLISH, "b/1")
    assert rules_file.reloads == 2
    assert len(changes) == 2


def test_a_missing_or_invalid_file_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read the MQTT rules file"):
        RulesFile(tmp_path / "absent", interval=1, on_change=lambda old, new: None).load()
    bad = tmp_path / "bad"
    bad.write_text("global allow everything #\n")
    with pytest.raises(ConfigurationError, match="line 1"):
        RulesFile(bad, interval=1, on_change=lambda old, new: None).load()
