"""The exception types users catch.

Every error raised on purpose by collect_kit derives from :class:`CollectKitError`; an
error the user can fix by changing a parameter, an option or a config field is also a
``ValueError`` (:class:`InvalidParameterError` and its subclasses), so Python callers may
catch either. Messages name the file, field, column or parameter, what was given and what
was expected ("--as-of: must be ..., got '2026-10-15'").

The CLI turns these into exit status 2 with the message on one line and no traceback; any
other exception is a bug (exit status 1, traceback). Exceptions are picklable: they cross
process boundaries when notebooks run under papermill.
"""

from __future__ import annotations

from typing import Any


class CollectKitError(Exception):
    """Base class of the errors a user can fix (bad config, bad data, bad parameter)."""


class InvalidParameterError(CollectKitError, ValueError):
    """A parameter, CLI option or config field has a value the kit cannot use.

    The message says which parameter, what it must be and what was received.
    """


class ConfigError(InvalidParameterError):
    """A configuration file or parameter is invalid; the message names the file and field."""


class DataAccessError(CollectKitError, ValueError):
    """A file, folder or database the user named cannot be read or written.

    Raised where the kit reads or writes (a corrupt, locked or non-DuckDB file, a CSV in
    another encoding, a folder where a file is expected, a read-only or full disk); the
    message holds the path and what to do.
    """


class DataValidationError(CollectKitError, ValueError):
    """Input data broke the canonical model; ``report`` lists every problem found.

    Raised once per load with all problems collected (lazy validation), never on the first.
    """

    def __init__(self, report: Any):
        self.report = report
        super().__init__(str(report))

    def __reduce__(self):
        return (self.__class__, (self.report,))


class NoResultsYetError(CollectKitError, ValueError):
    """An experiment has no customer whose outcome window has closed by the date read."""


class ResultTooLargeError(InvalidParameterError):
    """A computation would bring more rows back from the engine than an aggregate has
    (e.g. a breakdown by a column with a value per customer); the message says how many
    rows are allowed and what was being pulled."""


class InfeasiblePlanError(InvalidParameterError):
    """No strategy plan meets every capacity and rule at once.

    ``shortfalls``: the capacities and rules an elastic re-solve had to relax, each a dict
    with ``kind``, ``name``, ``unit``, ``limit``, ``needed`` and ``short_by``; the message
    says them in words ("agent hours: the plan needs 1 240, capacity 900: short by 340").
    """

    def __init__(self, message: str, shortfalls: list | None = None):
        self.shortfalls = list(shortfalls or [])
        super().__init__(message)

    def __reduce__(self):
        return (self.__class__, (str(self), self.shortfalls))
