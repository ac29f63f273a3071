"""Plans built from configs, readouts and the data: counts, effects, refusals."""

from __future__ import annotations

import pandas as pd
import pytest

from collect_kit import segmentation as sg
from collect_kit import synth
from collect_kit.errors import ConfigError
from collect_kit.experiments.run import readout_experiment
from collect_kit.planning.run import make_plan
from collect_kit.snapshot import snapshot

from .helpers import CONFIGS, plan_yaml

AS_OF = "2026-10-31"


@pytest.fixture(scope="module")
def sample_plan(tmp_path_factory, sources_yaml):
    folder = tmp_path_factory.mktemp("plan")
    out = tmp_path_factory.mktemp("export")
    path = plan_yaml(folder, sources_yaml)
    return make_plan(path, draws=100, export=out), out


def test_customers_per_segment_are_those_owing_at_the_month_end(sample_plan, small_sample):
    plan, _ = sample_plan
    snap = snapshot(small_sample.tables, AS_OF).to_pandas()
    rules = sg.load(CONFIGS / "segments" / "bureau_risk.yaml")
    seg = sg.assign(rules, snap)
    expected = seg[seg.overdue_balance > 0].segment.value_counts()
    got = dict(zip(plan.problem.segments, plan.problem.customers, strict=True))
    assert {k: int(v) for k, v in got.items() if v} == expected.to_dict()


def test_measured_effects_are_the_readouts_collected_per_customer(sample_plan, sources_yaml):
    plan, _ = sample_plan
    r = readout_experiment(CONFIGS / "experiments" / "sms_call_pilot.yaml", sources=sources_yaml,
                           as_of=AS_OF)  # fmt: skip
    rows = r.results[(r.results.metric == "collected_per_customer") & r.results.used]
    eff = plan.effects.set_index(["segment", "treatment"])
    for row in rows.itertuples():
        assert eff.loc[(row.segment, "sms_and_call"), "source"] == "measured"
        assert eff.loc[(row.segment, "sms_and_call"), "effect"] == pytest.approx(row.estimate)
        assert eff.loc[(row.segment, "sms_and_call"), "se"] == pytest.approx(row.se)
    # the catch-all was not in the pilot: SMS + call is no candidate there
    assert eff.loc[("Default", "sms_and_call"), "source"] == "none"


def test_assumed_discount_is_priced_on_last_months_collections(sample_plan, frames):
    plan, _ = sample_plan
    # collected per customer in October by the customers owing at September's end, by segment
    rules = sg.load(CONFIGS / "segments" / "bureau_risk.yaml")
    snap = snapshot({k: v for k, v in synth.generate(2_000, seed=11).tables.items()},
                    "2026-09-30").to_pandas()  # fmt: skip
    seg = sg.assign(rules, snap)
    owing = seg[seg.overdue_balance > 0][["customer_id", "segment"]]
    pay = frames["payments"]
    october = pay[(pay.paid_at > "2026-09-30") & (pay.paid_at <= "2026-10-31")]
    paid = october.groupby("customer_id").amount.sum()
    owing = owing.assign(paid=owing.customer_id.map(paid).fillna(0.0))
    collected = owing.groupby("segment").paid.mean()
    eff = plan.effects.set_index(["segment", "treatment"])
    stated = {"High risk": 150_000, "Medium risk": 120_000, "Default": 80_000}
    for segment, effect in stated.items():
        row = eff.loc[(segment, "settlement_offer")]
        assert row.source == "assumed"
        assert row.collected == pytest.approx(collected[segment])
        assert row.effect == pytest.approx(effect - 0.10 * (collected[segment] + effect))


def test_plan_meets_capacities_and_rules(sample_plan):
    plan, _ = sample_plan
    lim = plan.chosen.limits
    assert (lim.used <= lim.limit * (1 + 1e-9)).all()
    a = plan.chosen.allocation
    low = a[a.segment == "Low risk"]
    assert low[low.treatment != "usual_reminders"].customers.sum() == 0
    offer = a[a.treatment == "settlement_offer"]
    assert (offer.share <= 0.5 + 1e-9).all()
    assert plan.chosen.value >= plan.today.value - 1e-6  # today's plan is feasible
    assert plan.unconstrained.value >= plan.chosen.value - 1e-6


def test_exported_files_match_the_plan(sample_plan):
    plan, folder = sample_plan
    files = [pd.read_csv(f) for f in folder.glob("next_month-*.csv")]
    every = pd.concat(files)
    assert every.customer_id.is_unique
    planned = plan.chosen.allocation.groupby("treatment").customers.sum()
    got = plan.exported.groupby("treatment").planned.sum()
    assert got.to_dict() == planned[planned > 0].to_dict()
    assert len(every) == int(plan.problem.customers.sum())


def test_effects_of_an_experiment_on_other_segments_are_refused(tmp_path, sources_yaml):
    discount = {"measured": {"experiment": str(CONFIGS / "experiments" / "discount_offer.yaml"),
                             "arm": "challenger"},
                "actions": {"call": 1.0}}  # fmt: skip
    path = plan_yaml(tmp_path, sources_yaml, **{"treatments.discount": discount})
    with pytest.raises(ConfigError) as info:
        make_plan(path, draws=0)
    msg = str(info.value)
    assert "treatments.discount.measured" in msg and "discount_offer" in msg
    assert "debt_age.yaml" in msg and "state them under treatments.discount.assumed" in msg


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"treatments.sms_and_call.measured.arm": "champion"}, "is not a challenger"),
        ({"treatments.settlement_offer.assumed.Nobody": {"effect": 1, "se": 1}},
         "['Nobody'] are not segments"),
        ({"treatments.sms_and_call.assumed": {"High risk": {"effect": 1, "se": 1}}},
         "a measured effect"),
        ({"rules.keep_champion": ["Nobody"]}, "rules.keep_champion"),
    ],
)  # fmt: skip
def test_inconsistent_plans_are_refused(tmp_path, sources_yaml, change, words):
    path = plan_yaml(tmp_path, sources_yaml, **change)
    with pytest.raises(ConfigError, match=None) as info:
        make_plan(path, draws=0)
    assert words in str(info.value)
    assert str(path) in str(info.value)


def test_a_month_end_where_nobody_owes_has_nothing_to_plan(tmp_path, sources_yaml, small_sample):
    from collect_kit.errors import NoResultsYetError

    first = pd.Timestamp(small_sample.tables["receivables"].column("due_at").to_pandas().min())
    before = (first.to_period("M") - 1).to_timestamp(how="end").normalize()
    path = plan_yaml(tmp_path, sources_yaml)
    with pytest.raises(NoResultsYetError, match="nobody owes money at .* nothing to plan"):
        make_plan(path, as_of=str(before.date()), draws=0)


def test_given_snapshots_give_the_same_plan(tmp_path, sources_yaml, sample_plan):
    from collect_kit import sources

    plan, _ = sample_plan
    portfolio = sources.load(sources_yaml)
    given = {d: sg.portfolio_snapshot(None, portfolio, d).cache()
             for d in ("2026-10-31", "2026-09-30")}  # fmt: skip
    again = make_plan(plan_yaml(tmp_path, sources_yaml), portfolio=portfolio, draws=0,
                      snapshots=given)  # fmt: skip
    assert again.chosen.allocation.equals(plan.chosen.allocation)
    assert again.effects.equals(plan.effects)
