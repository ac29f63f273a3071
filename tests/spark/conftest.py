"""Spark tests are skipped, with the reason, only where Java (or PySpark) is absent; the
kit's ``spark`` extra, which ``make setup`` installs, brings PySpark."""

from __future__ import annotations

import pytest

from . import spark_missing


def pytest_collection_modifyitems(config, items):
    reason = spark_missing()
    if reason:
        for item in items:
            if "/tests/spark/" in str(item.fspath):
                item.add_marker(pytest.mark.skip(reason=reason))
