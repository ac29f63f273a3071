"""The monthly report run once on the 2 000-customer sample, shared by the modules that
read its documents (the runner's checks, and the Spark run compared with it)."""

from __future__ import annotations

import pytest

from collect_kit.reports.runner import run_report

from ..conftest import snapshot_cache
from .test_runner import MONTHLY


@pytest.fixture(scope="session")
def good_run(tmp_path_factory, sample_db):
    """(result, output folder) of the monthly report on DuckDB, with its own cache."""
    out = tmp_path_factory.mktemp("reports")
    with snapshot_cache(tmp_path_factory.mktemp("cache")):
        result = run_report(MONTHLY, output_dir=out, database=sample_db)
    return result, out
