"""The monthly report end to end on Spark local mode (``-p engine=spark``): the same
documents as on DuckDB, and an override that does not move ``latest``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from collect_kit.reports.runner import run_report

from ..conftest import snapshot_cache
from ..spark import SPARK, spark_missing
from .test_runner import DOCUMENTS, write_config

pytestmark = pytest.mark.skipif(spark_missing() is not None, reason=str(spark_missing()))


@pytest.fixture(scope="module")
def spark_run(tmp_path_factory, sample_db):
    folder = tmp_path_factory.mktemp("spark-report")
    config = write_config(folder, spark=SPARK.model_dump(exclude_defaults=True))
    with snapshot_cache(folder / "cache"):
        result = run_report(
            config, parameters={"engine": "spark"}, output_dir=folder / "out", database=sample_db
        )
    return result, folder / "out"


def test_the_run_is_whole_and_not_published(spark_run, good_run):
    result, out = spark_run
    assert result.ok, result.error
    manifest = json.loads((result.folder / "manifest.json").read_text())
    assert manifest["overrides"] == {"engine": "spark"}
    assert manifest["parameters"]["engine"] == "spark"
    assert manifest["published"] is False and not (out / "monthly" / "latest").exists()
    # the snapshots were computed on Spark: the cache key names the engine
    duck = json.loads((good_run[0].folder / "manifest.json").read_text())
    assert manifest["data_fingerprint"] != duck["data_fingerprint"]
    for name in DOCUMENTS:
        assert (result.folder / f"{name}.pdf").stat().st_size > 10_000


@pytest.mark.parametrize("name", DOCUMENTS)
def test_every_table_equals_the_duckdb_run(spark_run, good_run, name):
    """Each table of each document, cell by cell, as the DuckDB run of the same config
    wrote it: the same words, and numbers equal to 1e-9 relative (the spreadsheets keep
    full precision; the engines' floating-point sums differ in the last bits)."""
    spark_tables = sorted((spark_run[0].folder / f"{name}-tables").glob("*.csv"))
    duck_tables = sorted((good_run[0].folder / f"{name}-tables").glob("*.csv"))
    assert [p.name for p in spark_tables] == [p.name for p in duck_tables]
    assert len(duck_tables) >= 2
    for s, d in zip(spark_tables, duck_tables, strict=True):
        got, want = pd.read_csv(s, dtype=str), pd.read_csv(d, dtype=str)
        assert list(got.columns) == list(want.columns) and got.shape == want.shape, s.name
        for column in want.columns:
            a, b = got[column], want[column]
            numbers = pd.to_numeric(b, errors="coerce")
            text = numbers.isna()
            assert a[text].tolist() == b[text].tolist(), f"{s.name}: {column}"
            np.testing.assert_allclose(
                pd.to_numeric(a[~text]), numbers[~text], rtol=1e-9, err_msg=f"{s.name}: {column}"
            )
