"""What-if: migration matrices and PSI, checked against hand counts."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from collect_kit.segmentation import compare
from collect_kit.segmentation.compare import ABSENT
from collect_kit.segmentation.rules import from_dict
from collect_kit.stability import population_stability, psi_reading

A = from_dict(
    {
        "name": "a",
        "segments": [{"name": "Big", "when": {"column": "balance", "op": ">=", "value": 100}}],
    }
)
B = from_dict(
    {
        "name": "b",
        "segments": [{"name": "Big", "when": {"column": "balance", "op": ">=", "value": 50}}],
    }
)


@pytest.fixture
def before():
    return pd.DataFrame(
        {"customer_id": ["a", "b", "c", "d"], "balance": [10.0, 60.0, 120.0, 200.0]}
    )


def test_two_segmentations_on_one_snapshot(before):
    c = compare(A, B, before)
    m = c.matrix()
    # b (60) moves Default -> Big; c, d stay Big; a stays Default
    assert (
        m.loc["Big", "Big"] == 2
        and m.loc["Default", "Big"] == 1
        and m.loc["Default", "Default"] == 1
    )
    bal = c.matrix("balance_before")
    assert bal.loc["Default", "Big"] == 60 and bal.loc["Big", "Big"] == 320


def test_one_segmentation_on_two_snapshots(before):
    after = pd.DataFrame(
        {"customer_id": ["b", "c", "d", "e"], "balance": [150.0, 20.0, 200.0, 500.0]}
    )
    c = compare(A, A, before, after)
    rows = {(r.from_segment, r.to_segment): r for r in c.migration.itertuples()}
    assert rows[("Default", ABSENT)].customers == 1  # a left
    assert rows[(ABSENT, "Big")].customers == 1  # e arrived
    assert rows[("Default", "Big")].customers == 1 and rows[("Default", "Big")].balance_after == 150
    assert rows[("Big", "Default")].customers == 1 and rows[("Big", "Big")].customers == 1
    # PSI by hand: before Big 2 / Default 2; after Big 3 / Default 1; smoothing +0.5 each
    e = [(2 + 0.5) / 5, (2 + 0.5) / 5]
    a = [(3 + 0.5) / 5, (1 + 0.5) / 5]
    expected = sum((ai - ei) * math.log(ai / ei) for ai, ei in zip(a, e, strict=True))
    assert c.psi_total == pytest.approx(expected)
    assert c.reading == psi_reading(expected)


def test_psi_readings_and_empty_bins():
    assert (
        psi_reading(0.05) == "stable"
        and psi_reading(0.2) == "some shift"
        and psi_reading(0.3) == "major shift"
    )
    same = population_stability(pd.Series({"x": 10, "y": 30}), pd.Series({"x": 10, "y": 30}))
    assert same.psi.sum() == pytest.approx(0.0)
    empty = population_stability(pd.Series({"x": 0, "y": 40}), pd.Series({"x": 20, "y": 20}))
    assert math.isfinite(empty.psi.sum()) and empty.psi.sum() > 0.25
