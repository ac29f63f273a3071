"""Rules that read the propensity model's own score: ``risk_model:`` in the segmentation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from collect_kit import risk, sources
from collect_kit import segmentation as sg
from collect_kit.errors import InvalidParameterError
from collect_kit.snapshot import fingerprint, snapshot

RULES = """
name: with_model
risk_model: {{train_as_of: {train}, horizon_days: 30{extra}}}
segments:
  - name: Unlikely payers
    strategy: early_call
    when: {{all: [{{column: overdue_balance, op: ">", value: 0}},
                  {{column: p_pay, op: "<", value: 0.3}}]}}
default: {{strategy: reminders}}
"""


def rules(tmp_path, train="2026-08-31", extra=""):
    path = tmp_path / f"rules-{train}.yaml"
    path.write_text(RULES.format(train=train, extra=extra))
    return sg.load(path)


@pytest.fixture(scope="module")
def portfolio(sources_yaml):
    p = sources.load(sources_yaml)
    yield p
    p.close()


def test_p_pay_of_the_declared_model_drives_a_rule(tmp_path, portfolio):
    seg = rules(tmp_path)
    assert seg.risk_model.train_as_of.isoformat() == "2026-08-31"
    snap = sg.portfolio_snapshot(seg, portfolio, "2026-10-31").to_pandas()
    # the same model fitted by hand on the training snapshot, scored on this one
    train = snapshot(portfolio.tables, "2026-08-31").to_pandas()
    model = risk.fit(train, portfolio.tables["payments"], "2026-08-31")
    plain = snapshot(portfolio.tables, "2026-10-31").to_pandas()
    expected = plain[["customer_id"]].merge(model.score(plain), on="customer_id", how="left")
    got = snap.set_index("customer_id").p_pay.sort_index()
    np.testing.assert_allclose(
        got, expected.set_index("customer_id").p_pay.sort_index(), rtol=1e-12
    )
    assert got.isna().sum() == (plain.balance <= 0).sum()  # owing customers only
    seg_of = sg.assign(seg, snap).set_index("customer_id").segment
    low = snap.set_index("customer_id").pipe(lambda s: (s.overdue_balance > 0) & (s.p_pay < 0.3))
    assert (seg_of[low] == "Unlikely payers").all() and (seg_of[~low] == "Default").all()
    assert low.sum() > 10


def test_a_model_trained_later_or_without_complete_labels_is_refused(tmp_path, portfolio):
    sept = snapshot(portfolio.tables, "2026-09-30")
    with pytest.raises(InvalidParameterError, match="after the snapshot being segmented"):
        sg.with_p_pay(rules(tmp_path, "2026-10-31"), portfolio.tables, sept, "2026-09-30")
    late = rules(tmp_path, "2026-10-31")
    with pytest.raises(InvalidParameterError, match="not complete"):
        sg.portfolio_snapshot(late, portfolio, "2026-10-31")
    with pytest.raises(sg.SegmentationError, match="month end"):
        rules(tmp_path, "2026-08-15")
    with pytest.raises(sg.SegmentationError, match="penalty"):
        rules(tmp_path, extra=", penalty: -1")


def test_earlier_snapshots_carry_no_score_and_a_rule_on_it_fails_clearly(tmp_path, portfolio):
    seg = rules(tmp_path)
    early = sg.portfolio_snapshot(seg, portfolio, "2026-07-31")
    assert "p_pay" not in early.columns
    with pytest.raises(sg.SegmentationError, match="p_pay"):
        sg.assign(seg, early)


def test_the_snapshot_cache_key_covers_the_model(tmp_path, portfolio):
    a = rules(tmp_path).risk_model
    b = rules(tmp_path, extra=", penalty: 0.1").risk_model
    keys = {
        fingerprint(portfolio.tables, portfolio.fields, [portfolio.dpd_buckets, m])
        for m in (a, b, None)
    }
    assert len(keys) == 3
    assert pd.Timestamp(a.train_as_of) == pd.Timestamp("2026-08-31")
