"""Trees as cascades: hand-made data with a known rule, null handling, the YAML round trip."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.optimize import linear_sum_assignment

from collect_kit import segmentation as sg
from collect_kit.discovery.evidence import gini
from collect_kit.discovery.tree import cascade, design_matrix, propose

FEATURES = ["max_days_past_due", "overdue_balance", "score", "region", "has_valid_phone"]


def known_rule(n: int = 50_000, seed: int = 1) -> tuple[pd.DataFrame, np.ndarray]:
    """P(pay) = 0.8 inside "DPD over 30 and overdue balance up to 500 000", 0.2 outside;
    the other columns are noise (score missing for 10 %)."""
    rng = np.random.default_rng(seed)
    dpd = rng.integers(0, 240, n)
    balance = np.round(rng.gamma(2.0, 300_000.0, n))
    score = rng.normal(650, 80, n)
    score[rng.random(n) < 0.1] = np.nan
    inside = (dpd > 30) & (balance <= 500_000)
    frame = pd.DataFrame({
        "max_days_past_due": dpd, "overdue_balance": balance, "score": score,
        "region": rng.choice(["Maule", "Biobío", "Metropolitana"], n),
        "has_valid_phone": rng.random(n) < 0.7,
        "paid": (rng.random(n) < np.where(inside, 0.8, 0.2)).astype(float),
    })  # fmt: skip
    return frame, inside


def agreement(found: pd.Series, truth: np.ndarray) -> float:
    """Share of customers on the best one-to-one matching of found and true segments."""
    table = pd.crosstab(found.to_numpy(), truth)
    rows, cols = linear_sum_assignment(-table.to_numpy())
    return table.to_numpy()[rows, cols].sum() / len(truth)


def test_a_known_two_threshold_rule_is_found():
    frame, inside = known_rule()
    p = propose(frame, FEATURES, "paid", max_depth=3, min_leaf_share=0.02)
    rules = sg.rules.from_dict(cascade(p, "learned"))
    found = sg.assign(rules, frame).segment
    assert agreement(found, inside) >= 0.99
    assert len(rules.segments) == 2  # the noise splits merged away
    first = rules.segments[0]
    assert "DPD" in first.name and "overdue balance up to 500 k" in first.name


def missing_matters(n: int = 40_000, seed: int = 2) -> pd.DataFrame:
    """Customers without a score pay like the best scores; a categorical and a boolean
    column carry signal too, so the tree splits on all of them."""
    rng = np.random.default_rng(seed)
    score = rng.normal(600, 100, n)
    no_score = rng.random(n) < 0.15
    score[no_score] = np.nan
    kind = rng.choice(["person", "company"], n, p=[0.7, 0.3])
    phone = rng.random(n) < 0.6
    p = np.where(no_score | (score > 650), 0.7, 0.3) + np.where(kind == "company", 0.15, 0)
    p = p - np.where(phone, 0, 0.1)
    kind = pd.Series(kind, dtype=object)
    kind[rng.random(n) < 0.05] = None  # a missing type
    return pd.DataFrame({
        "score": score, "customer_type": kind, "has_valid_phone": phone,
        "max_days_past_due": rng.integers(0, 200, n).astype(float),
        "paid": (rng.random(n) < np.clip(p, 0, 1)).astype(float),
    })  # fmt: skip


def test_the_yaml_assigns_as_the_fitted_tree(tmp_path):
    frame = missing_matters()
    features = ["score", "customer_type", "has_valid_phone", "max_days_past_due"]
    p = propose(frame, features, "paid", max_depth=4, min_leaf_share=0.02, min_gap=0.0,
                merge_alpha=1e-300)  # fmt: skip
    path = tmp_path / "proposal.yaml"
    path.write_text(yaml.safe_dump(cascade(p, "learned"), sort_keys=False, allow_unicode=True))
    rules = sg.load(path)
    assert sg.lint(rules).empty
    found = sg.assign(rules, frame).segment.to_numpy()
    # the fitted tree's leaves, mapped to the segment each leaf's customers are in
    X, _ = design_matrix(frame, features)
    leaf = p.tree.apply(X.to_numpy())
    mapping = pd.crosstab(leaf, found).idxmax(axis=1)
    as_tree = mapping.reindex(leaf).to_numpy()
    differ = (as_tree != found).mean()
    assert p.moved <= 0.01 and differ <= p.moved + 1e-12
    # the tree splits on the score, whose missing values take the high payers' side
    text = path.read_text()
    assert "is_null" in text and "customer_type" in text and "has_valid_phone" in text
    no_score = frame.score.isna().to_numpy()
    rates = pd.Series(frame.paid.to_numpy()).groupby(found).mean()
    assert rates[pd.Series(found[no_score]).mode()[0]] > 0.6


def test_gini_of_grouped_scores_equals_scikit_learn_on_rows():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    score = rng.choice([0.1, 0.3, 0.3, 0.5, 0.8], 5000)  # ties within and across groups
    y = (rng.random(5000) < score).astype(int)
    groups = pd.DataFrame({"s": score, "y": y, "g": rng.integers(0, 12, 5000)})
    agg = groups.groupby(["g", "s"]).y.agg(["size", "sum"]).reset_index()
    got = gini(agg.s.to_numpy(), agg["size"].to_numpy(), agg["sum"].to_numpy())
    assert got == pytest.approx(2 * roc_auc_score(y, score) - 1, abs=1e-12)
