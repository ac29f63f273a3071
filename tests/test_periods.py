"""The calendar: one parser for as_of, month ends, periods; the rules worked by hand."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from collect_kit.errors import CollectKitError, InvalidParameterError
from collect_kit.periods import (
    Period,
    is_month_end,
    latest_month_end,
    parse_date,
    parse_month_end,
    previous_month_end,
)

D = pd.Timestamp
EXTRACTED = "2026-10-31"
FIRST = "2025-04-15"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2026-10-31", "2026-10-31"),
        ("2026-10", "2026-10-31"),
        ("2026-02-28", "2026-02-28"),
        (dt.date(2026, 9, 30), "2026-09-30"),
        (D("2026-06-30"), "2026-06-30"),
        (None, "2026-10-31"),
        ("latest", "2026-10-31"),
        (" 2026-09 ", "2026-09-30"),
    ],
)
def test_month_ends_that_are_accepted(given, expected):
    got = parse_month_end(given, "as_of", extraction_date=EXTRACTED, first_date=FIRST)
    assert got == D(expected)


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ("2026-10-15", ["must be a month end", "2026-10-31", "2026-09-30"]),
        ("01/10/2026", ["YYYY-MM-DD", "never guessed"]),
        ("10/01/2026", ["never guessed"]),
        ("2026/10/31", ["YYYY-MM-DD"]),
        ("31-10-2026", ["YYYY-MM-DD"]),
        ("20261031", ["YYYY-MM-DD"]),
        ("nonsense", ["'nonsense'"]),
        ("2026-13", ["not a real month"]),
        ("2026-02-30", ["not a real calendar date"]),
        ("2030-12-31", ["after the data's extraction date 2026-10-31"]),
        ("2026-11", ["after the data's extraction date"]),
        ("1990-01-31", ["before the end of the data's first month, 2025-04-30"]),
        ("2025-03", ["first month"]),
        (20261031, ["must be a date"]),
        (D("2026-10-31 12:00"), ["without a time"]),
        (dt.date(2026, 10, 15), ["must be a month end"]),
    ],
)
def test_month_ends_that_are_refused_say_why(given, words):
    with pytest.raises(InvalidParameterError) as info:
        parse_month_end(given, "--as-of", extraction_date=EXTRACTED, first_date=FIRST)
    message = str(info.value)
    assert message.startswith("--as-of: ")
    for word in words:
        assert word in message, message
    # the kit's error is both its root type and a ValueError
    assert isinstance(info.value, CollectKitError) and isinstance(info.value, ValueError)


def test_the_first_and_the_extraction_month_ends_are_allowed():
    assert parse_month_end("2025-04-30", extraction_date=EXTRACTED, first_date=FIRST) == D(
        "2025-04-30"
    )
    assert parse_month_end("2026-10-31", extraction_date=EXTRACTED) == D("2026-10-31")


def test_latest_needs_the_extraction_date():
    with pytest.raises(InvalidParameterError, match="extraction date"):
        parse_month_end("latest")


def test_latest_month_end_is_the_last_complete_month():
    assert latest_month_end("2026-10-31") == D("2026-10-31")
    assert latest_month_end("2026-11-25") == D("2026-10-31")
    assert latest_month_end("2026-03-01") == D("2026-02-28")
    assert previous_month_end("2026-03-31") == D("2026-02-28")
    assert previous_month_end("2026-03-10") == D("2026-02-28")
    assert is_month_end("2024-02-29") and not is_month_end("2024-02-28")
    assert parse_month_end("2024-02") == D("2024-02-29")  # leap year, no data bounds


def test_any_date_for_readouts():
    assert parse_date("2026-10-14", extraction_date=EXTRACTED) == D("2026-10-14")
    assert parse_date(None, extraction_date=EXTRACTED) == D(EXTRACTED)
    with pytest.raises(InvalidParameterError, match="YYYY-MM-DD"):
        parse_date("2026-10", extraction_date=EXTRACTED)  # a readout date is a day
    with pytest.raises(InvalidParameterError, match="after the data's extraction date"):
        parse_date("2026-11-01", extraction_date=EXTRACTED)
    with pytest.raises(InvalidParameterError, match="before the first assignment 2026-03-01"):
        parse_date("2026-02-01", earliest="2026-03-01", earliest_what="the first assignment")


def test_period_of_a_month():
    p = Period.of("2026-02")
    assert (p.start, p.end, p.opening, p.days, p.label) == (
        D("2026-02-01"), D("2026-02-28"), D("2026-01-31"), 28, "2026-02",
    )  # fmt: skip
    assert (
        Period.of("2026-02-28")
        == p
        == Period.of(D("2026-02-10"))
        == Period.of(pd.Period("2026-02"))
    )
    assert p.previous() == Period.of("2026-01")
    with pytest.raises(InvalidParameterError, match="month end"):
        Period.of("2026-02-10")  # text must be unambiguous: a month or its end
