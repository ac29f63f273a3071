"""The exception types users catch.

Every error raised on purpose by collect_kit derives from :class:`CollectKitError`.
The CLI turns these into exit status 2 with the message and no traceback; any other
exception is a bug (exit status 1). Exceptions are picklable: they cross process
boundaries when notebooks run under papermill.
"""

from __future__ import annotations

from typing import Any


class CollectKitError(Exception):
    """Base class of the errors a user can fix (bad config, bad data, bad parameter)."""


class ConfigError(CollectKitError, ValueError):
    """A configuration file or parameter is invalid; the message names the file and field."""


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
