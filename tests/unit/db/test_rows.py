"""The helpers of one-hop reads: IN lists padded to few distinct statements, values read alike on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from mqtthub.db.rows import _numbered, in_list, json_value, utc


@pytest.mark.parametrize(("count", "size"), [(1, 1), (2, 2), (3, 4), (8, 8), (9, 16), (500, 512)])
def test_an_in_list_is_padded_to_a_power_of_two_with_its_last_value(count: int, size: int) -> None:
    values = [f"k{n}" for n in range(count)]
    marks, parameters = in_list(values)
    assert marks == "(" + ", ".join(["?"] * size) + ")"
    assert parameters[:count] == values
    assert set(parameters[count:]) <= {values[-1]}
    assert len(parameters) == size


def test_an_empty_in_list_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one value"):
        in_list([])


def test_question_marks_become_numbered_for_postgresql() -> None:
    assert _numbered("SELECT a FROM t WHERE b = ? AND c IN (?, ?)") == "SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)"


def test_datetimes_read_as_utc_from_text_naive_and_zoned_values() -> None:
    moment = datetime(2026, 12, 7, 3, 4, 5, 678901, tzinfo=UTC)
    assert utc("2026-12-07 03:04:05.678901") == moment
    assert utc(datetime(2026, 12, 7, 3, 4, 5, 678901)) == moment
    assert utc(moment.astimezone(timezone(timedelta(hours=2)))) == moment
    assert utc(moment).tzinfo is UTC  # type: ignore[union-attr]
    assert utc(None) is None


def test_json_is_decoded_from_text_and_kept_when_already_decoded() -> None:
    assert json_value('["a/#"]') == ["a/#"]
    assert json_value(b"{}") == {}
    assert json_value(["a/#"]) == ["a/#"]
    assert json_value(None) is None
