"""Uplift segments: a hand-made test with a known group that answers, the held-out
measurements against statsmodels, the Qini curve by hand, the sample's pilot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from statsmodels.stats.proportion import confint_proportions_2indep
from typer.testing import CliRunner

from collect_kit import segmentation as sg
from collect_kit.cli import app
from collect_kit.demo import sample_config
from collect_kit.discovery.tree import cascade
from collect_kit.discovery.uplift import measure, propose_uplift, qini
from collect_kit.segmentation.rules import from_dict

FEATURES = ["score", "max_days_past_due", "overdue_balance", "noise"]


def past_test(n: int = 200_000, seed: int = 3) -> pd.DataFrame:
    """A 50/50 test whose challenger adds 3 points to the probability of paying for scores
    under 600 and nothing above; the base rate falls with days past due and balance."""
    rng = np.random.default_rng(seed)
    score = rng.normal(620, 90, n)
    score[rng.random(n) < 0.08] = np.nan
    dpd = rng.integers(0, 240, n).astype(float)
    balance = np.round(rng.gamma(2, 300_000, n))
    base = 1 / (
        1 + np.exp(-(0.8 - 0.012 * dpd - 8e-7 * balance + 0.004 * np.nan_to_num(score - 620)))
    )
    lift = np.where(score < 600, 0.03, 0.0)
    treated = rng.random(n) < 0.5
    paid = rng.random(n) < np.clip(base + treated * lift, 0, 1)
    return pd.DataFrame({
        "score": score, "max_days_past_due": dpd, "overdue_balance": balance,
        "noise": rng.random(n), "treated": treated.astype(int), "paid": paid.astype(float),
    })  # fmt: skip


@pytest.mark.slow
def test_the_group_that_answers_is_found_and_measured_on_the_held_out_half():
    frame = past_test()
    u = propose_uplift(frame, FEATURES, "treated", "paid", max_depth=2, min_leaf_share=0.1,
                       seed=7)  # fmt: skip
    assert any("score" in name for name in u.proposal.names)
    held = frame[u.held_mask]
    rules = from_dict(cascade(u.proposal, "uplift"))
    segment = sg.assign(rules, held[FEATURES]).segment.to_numpy()
    m = u.held_out
    answers = (held.score < 600).to_numpy()
    deaf = (held.score >= 600).to_numpy()
    w3 = pd.Series(segment[answers]).value_counts(normalize=True).reindex(m.index, fill_value=0)
    w0 = pd.Series(segment[deaf]).value_counts(normalize=True).reindex(m.index, fill_value=0)
    # each group's uplift as the segments measure it on the held-out half; the segments are
    # independent samples, so the difference's variance adds up over segments
    difference = float(((w3 - w0) * m.uplift).sum())
    se = float(np.sqrt((((w3 - w0) * m.se) ** 2).sum()))
    assert difference - 1.96 * se > 0, (difference, se)
    assert u.qini_coefficient > 0


def test_held_out_uplifts_equal_statsmodels_and_the_qini_curve_is_hand_made():
    segment = np.array(["a"] * 6 + ["b"] * 6)
    treated = np.array([1, 1, 1, 0, 0, 0] * 2, bool)
    paid = np.array([1, 1, 0, 1, 0, 0, 1, 0, 0, 0, 0, 1], float)
    m = measure(segment, treated, paid, ["a", "b"])
    assert m.uplift.tolist() == pytest.approx([2 / 3 - 1 / 3, 1 / 3 - 1 / 3])
    for seg, row in m.iterrows():
        low, high = confint_proportions_2indep(
            row.payers_challenger, row.n_challenger, row.payers_champion, row.n_champion,
            method="wald", compare="diff",
        )  # fmt: skip
        assert (row.ci_low, row.ci_high) == pytest.approx((low, high)), seg
    curve, coefficient = qini(m)
    # after a: 2 - 1 x 3/3 = 1 incremental payer; after b: 3 - 2 x 6/6 = 1
    assert curve.incremental_payers.tolist() == pytest.approx([0, 1, 1])
    assert curve.share.tolist() == pytest.approx([0, 0.5, 1])
    # area: 0.25 + 0.5 = 0.75; random line: 0.5; per customer: 0.25 / 12
    assert coefficient == pytest.approx(0.25 / 12)


def test_uplift_from_the_sample_pilot(tmp_path, sources_yaml):
    configs = sample_config().parent.parent
    raw = yaml.safe_load((configs / "discovery" / "pilot_uplift.yaml").read_text())
    raw |= {"sources": str(sources_yaml), "current": str(configs / "segments" / "bureau_risk.yaml"),
            "experiment": str(configs / "experiments" / "sms_call_pilot.yaml")}  # fmt: skip
    path = tmp_path / "uplift.yaml"
    path.write_text(yaml.safe_dump(raw))
    out = tmp_path / "proposal.yaml"
    done = CliRunner().invoke(app, ["discover", str(path), "--out", str(out)])
    assert done.exit_code == 0, done.output
    text = out.read_text()
    assert "(T-learner)" in text.replace("\n# ", " ")
    rules = sg.load(out)
    for segment in rules.segments:
        assert "measured on the held-out half" in " ".join(segment.description.split())
    assert sg.lint(rules).empty and "Qini" in done.output
