"""Discovery from a config on the sample: dates, evidence against independent computations,
the command."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from collect_kit import segmentation as sg
from collect_kit.cli import app
from collect_kit.demo import sample_config
from collect_kit.discovery.run import discover
from collect_kit.errors import ConfigError
from collect_kit.snapshot import snapshot

CONFIGS = sample_config().parent.parent
CONFIG = CONFIGS / "discovery" / "consumer_propensity.yaml"


def config(folder, sources, **changes):
    raw = yaml.safe_load(CONFIG.read_text())
    raw |= {"sources": str(sources), "current": str(CONFIGS / "segments" / "consumer.yaml")}
    raw |= changes
    path = folder / f"discovery-{len(list(folder.glob('*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def found(tmp_path_factory, sources_yaml):
    return discover(config(tmp_path_factory.mktemp("disc"), sources_yaml))


def rows(small_sample, frames, rules, as_of, horizon=30) -> pd.DataFrame:
    """Per customer owing at ``as_of``: segment and paid within the horizon, in pandas."""
    snap = snapshot(small_sample.tables, as_of).to_pandas()
    if rules.risk_model is not None:
        pytest.skip("the current segmentation reads p_pay")
    owing = snap[snap.overdue_balance > 0]
    seg = sg.assign(rules, owing)[["customer_id", "segment"]]
    pay = frames["payments"]
    end = pd.Timestamp(as_of) + pd.Timedelta(days=horizon)
    payers = set(pay[(pay.paid_at > as_of) & (pay.paid_at <= end)].customer_id)
    return seg.assign(paid=seg.customer_id.isin(payers).astype(float))


def test_evidence_equals_independent_computations(found, small_sample, frames):
    assert found.train_as_of < found.evaluate_as_of
    for name, rules in (
        ("proposal", found.rules),
        ("current", sg.load(CONFIGS / "segments" / "consumer.yaml")),
    ):
        before = rows(small_sample, frames, rules, found.train_as_of)
        after = rows(small_sample, frames, rules, found.evaluate_as_of)
        ev = found.evidence[name]
        rate0 = before.groupby("segment").paid.mean()
        score = after.segment.map(rate0).fillna(after.paid.mean())
        assert ev["gini"] == pytest.approx(2 * roc_auc_score(after.paid, score) - 1, abs=1e-9), name
        n0, n1 = before.segment.value_counts(), after.segment.value_counts()
        cats = sorted(set(n0.index) | set(n1.index))
        n0, n1 = n0.reindex(cats, fill_value=0), n1.reindex(cats, fill_value=0)
        e = (n0 + 0.5) / (n0.sum() + 0.5 * len(cats))
        a = (n1 + 0.5) / (n1.sum() + 0.5 * len(cats))
        assert ev["psi"] == pytest.approx(float(((a - e) * np.log(a / e)).sum()), abs=1e-12), name
        big = after.groupby("segment").paid.agg(["size", "mean"])
        big = big[big["size"] >= 30]["mean"]
        assert ev["spread"] == pytest.approx(big.max() - big.min(), abs=1e-12), name
    # on data it never saw, the learned cascade separates payers at least as well
    assert found.evidence["proposal"]["gini"] >= found.evidence["current"]["gini"] - 0.05


def test_proposal_round_trips_and_says_how_it_was_made(found, tmp_path):
    path = tmp_path / "proposal.yaml"
    path.write_text(found.text)
    assert found.text.startswith("# Proposed by `collect-kit discover`")
    assert f"at {found.train_as_of.date()}" in found.text and "paid within 30 days" in found.text
    rules = sg.load(path)
    assert [s.name for s in rules.segments] == [s.name for s in found.rules.segments]
    assert sg.lint(rules).empty


def test_the_training_month_and_incomplete_labels_are_refused(tmp_path, sources_yaml):
    same = config(tmp_path, sources_yaml, train_as_of="2026-08-31", evaluate_as_of="2026-08-31")
    with pytest.raises(ConfigError, match="is not after train_as_of"):
        discover(same)
    late = config(tmp_path, sources_yaml, train_as_of="2026-08-31", evaluate_as_of="2026-10-31")
    with pytest.raises(ConfigError, match="labels are incomplete"):
        discover(late)
    unknown = config(tmp_path, sources_yaml, features=["max_days_past_due", "shoe_size"])
    with pytest.raises(ConfigError, match=r"\['shoe_size'\] are not snapshot columns"):
        discover(unknown)


def test_discover_command(tmp_path, sources_yaml):
    path = config(tmp_path, sources_yaml)
    out = tmp_path / "proposal.yaml"
    done = CliRunner().invoke(app, ["discover", str(path), "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert out.read_text().startswith("# Proposed by") and "Gini" in done.output
    out.write_text("# my edits\n" + out.read_text())
    again = CliRunner().invoke(app, ["discover", str(path), "--out", str(out)])
    assert again.exit_code == 2 and "exists" in again.output
    assert out.read_text().startswith("# my edits")  # an edited proposal is never overwritten
    assert not math.isnan(0.0)
