"""The calendar: months, month ends, the latest complete month, and the one ``as_of`` parser.

Periods are calendar months; a report's ``as_of`` is a month end, inclusive (DESIGN §9).
Every place that takes a date from a user (the CLI, the report runner, the notebooks, the
library) parses it here, with one set of rules:

- text is ``YYYY-MM-DD`` or ``YYYY-MM`` (that month's end); nothing else is guessed, so
  ``01/10/2026`` is refused instead of being read as 10 January or 1 October;
- a month-end parameter (:func:`parse_month_end`) must be a month end: ``2026-10-15`` is
  refused with the month ends it probably meant;
- with the data's bounds, a date after the extraction date or before the data's first
  month is refused (a report on data that does not exist yet, or any more, is wrong, not
  empty).

Dates and Timestamps given by Python callers are unambiguous and skip the format rule but
not the others. Errors are :class:`~collect_kit.errors.InvalidParameterError` naming the
parameter.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import pandas as pd

from .errors import InvalidParameterError

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MONTH = re.compile(r"^\d{4}-\d{2}$")
LATEST = "latest"


def month_end(date) -> pd.Timestamp:
    """The last day of the month of ``date`` (midnight)."""
    d = pd.Timestamp(date).normalize()
    return d + pd.offsets.MonthEnd(0)


def is_month_end(date) -> bool:
    d = pd.Timestamp(date)
    return d == d.normalize() and d == month_end(d)


def latest_month_end(extraction_date) -> pd.Timestamp:
    """The last complete month's end on or before ``extraction_date`` (DESIGN §9)."""
    d = pd.Timestamp(extraction_date).normalize()
    end = month_end(d)
    return end if end == d else d - pd.offsets.MonthEnd(1)


def previous_month_end(date) -> pd.Timestamp:
    """The month end before the month of ``date``."""
    return month_end(date) - pd.offsets.MonthEnd(1)


@dataclass(frozen=True)
class Period:
    """A calendar month: ``start`` and ``end`` (inclusive dates) and the opening date."""

    start: pd.Timestamp
    end: pd.Timestamp

    @classmethod
    def of(cls, period) -> Period:
        """A month from ``"YYYY-MM"``, a month end ``"YYYY-MM-DD"``, a Period, or a date
        object (any day of the month: objects are unambiguous)."""
        if isinstance(period, Period):
            return period
        if isinstance(period, pd.Period):
            p = period.asfreq("M")
        elif isinstance(period, str):
            p = pd.Period(parse_month_end(period, "period"), freq="M")
        elif isinstance(period, dt.date | pd.Timestamp):
            p = pd.Period(pd.Timestamp(period), freq="M")
        else:
            raise InvalidParameterError(
                f"period: must be a month as 'YYYY-MM', a month end or a date, "
                f"got {type(period).__name__} {period!r}"
            )
        return cls(p.start_time.normalize(), p.end_time.normalize())

    @property
    def opening(self) -> pd.Timestamp:
        """The day before the period: the opening book is the snapshot of this date."""
        return self.start - pd.Timedelta(days=1)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def label(self) -> str:
        """``"2026-10"``."""
        return f"{self.start:%Y-%m}"

    def previous(self) -> Period:
        return Period.of(self.opening)

    def __str__(self) -> str:
        return self.label


def _parse(value, name: str, allow_month: bool) -> tuple[pd.Timestamp, bool]:
    """(date, given_as_month) from text or a date object; the format rule only."""
    if isinstance(value, pd.Timestamp | dt.date):  # datetime is a date too
        ts = pd.Timestamp(value)
        if ts != ts.normalize():
            raise InvalidParameterError(f"{name}: must be a date without a time, got {value}")
        return ts, False
    if not isinstance(value, str):
        raise InvalidParameterError(
            f"{name}: must be a date as YYYY-MM-DD, got {type(value).__name__} {value!r}"
        )
    text = value.strip()
    wanted = "a month end as YYYY-MM-DD or a month as YYYY-MM" if allow_month else "YYYY-MM-DD"
    if _MONTH.match(text) and allow_month:
        try:
            return month_end(pd.Timestamp(text + "-01")), True
        except ValueError:
            raise InvalidParameterError(f"{name}: '{value}' is not a real month") from None
    if not _DAY.match(text):
        hint = ""
        if re.match(r"^\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}$", text):
            hint = " (day and month order is never guessed: write the year first)"
        raise InvalidParameterError(f"{name}: must be {wanted}, got '{value}'{hint}")
    try:
        return pd.Timestamp(dt.date.fromisoformat(text)), False
    except ValueError:
        raise InvalidParameterError(f"{name}: '{value}' is not a real calendar date") from None


def _check_bounds(
    date: pd.Timestamp, name: str, shown: str, extraction_date, earliest, too_early: str
) -> None:
    """Refuse ``date`` after ``extraction_date`` or before ``earliest`` (``too_early``
    says why, after "is before")."""
    if extraction_date is not None and date > pd.Timestamp(extraction_date):
        latest = latest_month_end(extraction_date)
        raise InvalidParameterError(
            f"{name}: {shown} is after the data's extraction date "
            f"{pd.Timestamp(extraction_date).date()} (the latest complete month ends "
            f"{latest.date()}); outcomes after the extraction are not in the data"
        )
    if earliest is not None and date < pd.Timestamp(earliest).normalize():
        raise InvalidParameterError(f"{name}: {shown} is before {too_early}")


def parse_month_end(
    value,
    name: str = "as_of",
    *,
    extraction_date=None,
    first_date=None,
) -> pd.Timestamp:
    """``value`` as a month end (midnight Timestamp).

    Accepted: ``YYYY-MM-DD`` that is a month end, ``YYYY-MM`` (that month's end), a date
    object that is a month end, and ``None`` / ``"latest"`` for the last complete month of
    the data (needs ``extraction_date``). With ``extraction_date`` a month end after it is
    refused; with ``first_date`` (the data's first event) one before the end of that first
    month is refused. Raises :class:`InvalidParameterError` naming ``name``.
    """
    if value is None or (isinstance(value, str) and value.strip() in ("", LATEST)):
        if extraction_date is None:
            raise InvalidParameterError(
                f"{name}: '{LATEST}' needs the data's extraction date; give a month end"
            )
        return latest_month_end(extraction_date)
    date, as_month = _parse(value, name, allow_month=True)
    if not as_month and not is_month_end(date):
        end, before = month_end(date), previous_month_end(date)
        raise InvalidParameterError(
            f"{name}: must be a month end, got {date.date()}; did you mean {end.date()} "
            f"(the end of that month, or write {end:%Y-%m}) or {before.date()} (the month "
            f"end before it)?"
        )
    shown = f"{date.date()}" + (f" ('{value}')" if as_month else "")
    first_end, too_early = None, ""
    if first_date is not None:
        first_end = month_end(first_date)
        too_early = (
            f"the end of the data's first month, {first_end.date()} (the first receivable "
            f"was issued {pd.Timestamp(first_date).date()})"
        )
    _check_bounds(date, name, shown, extraction_date, first_end, too_early)
    return date


def parse_date(
    value,
    name: str = "as_of",
    *,
    extraction_date=None,
    earliest=None,
    earliest_what: str = "the data's first date",
) -> pd.Timestamp:
    """``value`` as a calendar date (``YYYY-MM-DD`` or a date object; any day).

    For dates that need not be month ends, such as an experiment readout's ``as_of``
    (sequential readouts look weekly). ``None`` gives the extraction date. Refused after
    ``extraction_date`` and before ``earliest`` (described by ``earliest_what``).
    """
    if value is None:
        if extraction_date is None:
            raise InvalidParameterError(f"{name}: a date as YYYY-MM-DD is required")
        return pd.Timestamp(extraction_date).normalize()
    date, _ = _parse(value, name, allow_month=False)
    too_early = f"{earliest_what} {pd.Timestamp(earliest).date()}" if earliest is not None else ""
    _check_bounds(date, name, str(date.date()), extraction_date, earliest, too_early)
    return date
