"""Diagnostics on crafted cases: shadowed, all-null, constant, contradictory, unreachable."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from collect_kit.segmentation import DEFAULT, SegmentationError, explain, lint
from collect_kit.segmentation.rules import from_dict


@pytest.fixture
def snap() -> pd.DataFrame:
    n = 20
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:02d}" for i in range(n)],
            "balance": np.arange(n, dtype=float) * 100,  # 0 .. 1900
            "overdue_balance": np.arange(n, dtype=float) * 10,
            "max_days_past_due": np.arange(n) * 5,  # 0 .. 95
            "score": pd.array([None] * n, dtype="Float64"),  # badly loaded: all null
            "region": ["RM"] * n,  # constant
            "customer_type": ["person"] * 15 + ["company"] * 5,
        }
    )


def seg(*segments):
    return from_dict({"name": "crafted", "segments": list(segments)})


def test_per_segment_table_sums_and_order(snap):
    e = explain(
        seg(
            {
                "name": "Late",
                "strategy": "call",
                "when": {"column": "max_days_past_due", "op": ">", "value": 50},
            }
        ),
        snap,
    )
    s = e.segments.set_index("segment")
    assert list(s.index) == ["Late", DEFAULT]
    # max_days_past_due = 5 i > 50  <=>  i >= 11: 9 customers
    assert s.loc["Late", "customers"] == 9 and s.loc[DEFAULT, "customers"] == 11
    assert s.loc["Late", "share"] == pytest.approx(9 / 20)
    assert s.loc["Late", "balance"] == sum(i * 100 for i in range(11, 20))
    assert s.loc["Late", "overdue_balance"] == sum(i * 10 for i in range(11, 20))
    assert s.loc["Late", "mean_days_past_due"] == pytest.approx(
        np.mean([5 * i for i in range(11, 20)])
    )
    assert s.loc["Late", "strategy"] == "call"


def test_shadowed_segment_is_absorbed_and_unreachable(snap):
    e = explain(
        seg(
            {"name": "Late", "when": {"column": "max_days_past_due", "op": ">", "value": 30}},
            {"name": "Very late", "when": {"column": "max_days_past_due", "op": ">", "value": 60}},
        ),
        snap,
    )
    s = e.segments.set_index("segment")
    assert s.loc["Very late", "customers"] == 0 and s.loc["Very late", "satisfied"] == 7  # i >= 13
    assert s.loc["Very late", "status"] == "empty"
    assert (
        "absorbed" in s.loc["Very late", "reason"] and "'Late' (7)" in s.loc["Very late", "reason"]
    )
    m = e.absorption_matrix()
    assert m.loc["Very late", "Late"] == 7 and m.loc["Very late", "Very late"] == 0
    assert m.loc["Late", "Late"] == 13  # i >= 7
    checks = set(e.lint.check)
    assert {"unreachable", "empty_segment"} <= checks


def test_empty_segment_from_an_all_null_column_names_the_leaf(snap):
    e = explain(
        seg({"name": "Risky", "when": {"all": [{"column": "balance", "op": ">", "value": 0},
                                                {"column": "score", "op": "<", "value": 550}]}}),
        snap,
    )  # fmt: skip
    s = e.segments.set_index("segment")
    assert s.loc["Risky", "customers"] == 0 and s.loc["Risky", "satisfied"] == 0
    assert "score < 550 (all[1]) is true for no customer" in s.loc["Risky", "reason"]
    cols = e.columns.set_index("column")
    assert cols.loc["score", "all_null"] and cols.loc["score", "null_rate"] == 1.0
    assert "all_null_column" in set(e.lint.check)
    leaves = e.leaves.set_index("path")
    assert leaves.loc["all[0]", "customers"] == 19 and leaves.loc["all[1]", "customers"] == 0


def test_constant_column_is_flagged(snap):
    e = explain(seg({"name": "RM", "when": {"column": "region", "op": "==", "value": "RM"}}), snap)
    assert e.columns.set_index("column").loc["region", "constant"]
    assert "constant_column" in set(e.lint.check)
    assert (
        e.segments.set_index("segment").loc[DEFAULT, "reason"]
        == "every customer matched an earlier segment"
    )


def test_contradictory_range(snap):
    rules = seg({"name": "Odd", "when": {"all": [{"column": "balance", "op": ">", "value": 1000},
                                                  {"column": "balance", "op": "<", "value": 500}]}})  # fmt: skip
    e = explain(rules, snap)
    found = e.lint[e.lint.check == "contradiction"]
    assert len(found) == 1 and "balance > 1000 and balance < 500" in found.message.iloc[0]
    assert "never all together" in e.segments.set_index("segment").loc["Odd", "reason"]


def test_static_lint_without_data():
    rules = seg(
        {"name": "B", "when": {"column": "balance", "op": "between", "value": [500, 100]}},
        {"name": "C", "when": {"column": "customer_type", "op": "==", "value": "company"}},
        {"name": "D", "when": {"all": [{"column": "customer_type", "op": "in", "value": ["company"]},
                                       {"column": "balance", "op": ">", "value": 5}]}},
        {"name": "E", "when": {"all": [{"column": "customer_type", "op": "==", "value": "a"},
                                       {"column": "customer_type", "op": "==", "value": "b"}]}},
    )  # fmt: skip
    found = lint(rules)
    got = set(zip(found.segment, found.check, strict=True))
    assert got == {
        ("B", "inverted_between"),
        ("D", "unreachable"),
        ("E", "contradiction"),
    }


def test_type_mismatch_is_lint_and_stops_explain(snap):
    import ibis

    rules = seg({"name": "T", "when": {"column": "balance", "op": ">", "value": "1000"}})
    found = lint(rules, ibis.memtable(snap).schema())
    assert found.check.tolist() == ["type_mismatch"] and found.severity.tolist() == ["error"]
    with pytest.raises(SegmentationError, match="compares number column 'balance' with text"):
        explain(rules, snap)


def test_unknown_column_is_an_error(snap):
    with pytest.raises(
        SegmentationError, match=r"segment 'X'.*unknown column 'regoin' \(did you mean 'region'\?\)"
    ):
        explain(seg({"name": "X", "when": {"column": "regoin", "op": "==", "value": "RM"}}), snap)
