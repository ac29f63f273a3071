"""Portable SQL: each dialect's text runs (directly or transpiled) and matches the reference."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
import sqlglot

from collect_kit.segmentation import SegmentationError
from collect_kit.segmentation.rules import from_dict
from collect_kit.segmentation.sql import to_sql

from .test_compile import reference_segments

SEG = from_dict(
    {
        "name": "sql",
        "segments": [
            {"name": "Injected", "strategy": "x", "when": {"column": "region", "op": "in", "value": ["0; DROP TABLE customers", "it's"]}},
            {"name": "High risk", "strategy": "call", "when": {"all": [
                {"column": "score", "op": "<", "value": 550},
                {"any": [{"column": "broken_promises", "op": ">=", "value": 1},
                         {"not": {"column": "has_valid_phone", "op": "==", "value": True}}]}]}},
            {"name": "No score", "when": {"column": "score", "op": "is_null"}},
            {"name": "Mid", "when": {"column": "balance", "op": "between", "value": [100, 5000]}},
        ],
        "default": {"strategy": "sms"},
    }
)  # fmt: skip


@pytest.fixture(scope="module")
def snapshot_frame():
    rng = np.random.default_rng(3)
    n = 500
    score = rng.integers(300, 900, n).astype(float)
    score[rng.random(n) < 0.15] = np.nan
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:04d}" for i in range(n)],
            "score": score,
            "broken_promises": rng.integers(0, 3, n),
            "has_valid_phone": pd.array(
                np.where(rng.random(n) < 0.1, None, rng.random(n) < 0.8), dtype="boolean"
            ),
            "balance": rng.integers(0, 10_000, n).astype(float),
            "region": rng.choice(["RM", "Maule", "it's", "0; DROP TABLE customers"], n),
        }
    )


def run_on_duckdb(sql: str, frame: pd.DataFrame) -> pd.Series:
    con = duckdb.connect()
    con.register("snapshot", frame)
    out = con.execute(sql).df()
    con.close()
    return out.set_index("customer_id")["segment"]


@pytest.mark.parametrize(
    "dialect, read",
    [
        ("duckdb", None),
        ("spark", "databricks"),
        ("postgres", "postgres"),
        ("snowflake", "snowflake"),
    ],
)
def test_dialect_matches_reference(snapshot_frame, dialect, read):
    sql = to_sql(SEG, dialect)
    assert "DROP TABLE customers'" in sql  # a quoted literal, not a statement
    if read is not None:
        sql = sqlglot.transpile(sql, read=read, write="duckdb")[0]
    got = run_on_duckdb(sql, snapshot_frame)
    expected = pd.Series(reference_segments(SEG, snapshot_frame), index=snapshot_frame.customer_id)
    assert got.loc[expected.index].tolist() == expected.tolist()
    assert set(expected) == set(SEG.names)  # every segment is exercised


def test_unknown_dialect():
    with pytest.raises(SegmentationError, match="dialect: 'oracle'"):
        to_sql(SEG, "oracle")
