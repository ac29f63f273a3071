"""The experiment readout's pages: numbers from the package, sentences for each case,
privacy suppression, escaping and both languages."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from collect_kit import sources
from collect_kit.experiments import readout_experiment
from collect_kit.reports import experiment as ex
from collect_kit.reports.format import Formatter

CONFIGS = Path(__file__).resolve().parents[2] / "src" / "collect_kit" / "configs" / "experiments"
EN, ES = Formatter("en", "CLP"), Formatter("es", "CLP")


@pytest.fixture(scope="module")
def portfolio(sample_db):
    return sources.load(CONFIGS.parent / "sources" / "sample.yaml", database=sample_db)


@pytest.fixture(scope="module")
def pilot(portfolio):
    return readout_experiment(
        CONFIGS / "sms_call_pilot.yaml", as_of="2026-10-31", portfolio=portfolio
    )


def test_segments_follow_the_cascade_then_natural_order(pilot, portfolio, tmp_path):
    # bureau_risk.yaml's cascade order, not alphabetical
    assert list(dict.fromkeys(pilot.results.segment)) == ["High risk", "Medium risk", "Low risk"]
    # consumer.yaml has High risk before Low risk; Medium risk is not one of its segments
    other = _copy(CONFIGS / "sms_call_pilot.yaml", tmp_path / "pilot.yaml")
    other.write_text(other.read_text().replace("bureau_risk.yaml", "consumer.yaml"))
    r = readout_experiment(other, as_of="2026-10-31", portfolio=portfolio)
    assert list(dict.fromkeys(r.results.segment)) == ["High risk", "Low risk", "Medium risk"]
    # no segmentation: natural order ("61-90" before "181+"), not alphabetical
    bare = _copy(CONFIGS / "discount_offer.yaml", tmp_path / "offer.yaml")
    bare.write_text(
        "\n".join(x for x in bare.read_text().splitlines() if not x.startswith("segmentation:"))
    )
    offer = readout_experiment(bare, portfolio=portfolio)
    order = ["61-90", "91-180", "181+"]
    for frame in (offer.statistics, offer.results, offer.recommendations, offer.survival):
        assert list(dict.fromkeys(frame.segment)) == order


def _copy(config: Path, to: Path) -> Path:
    """The config at ``to`` with its relative paths made absolute."""
    text = config.read_text()
    for rel in re.findall(r"\.\./[\w/]+\.yaml", text):
        text = text.replace(rel, str((config.parent / rel).resolve()))
    to.write_text(text)
    return to


def test_design_recap_counts_what_was_assigned(pilot):
    table, sentences = ex.design_recap(pilot, EN)
    for seg, g in pilot.statistics.groupby("segment"):
        assert f'<td class="text">{seg}</td>' in table
        assert f"{int(g.n.sum()):,}" in table
        assert any(s.startswith(seg) for s in sentences)
    assert "champion 80.0 %" not in table and "champion 80 %" in table


def test_srm_table_matches_scipy_chisquare(pilot):
    f = ex.srm_frame(pilot)
    for _, g in f.groupby("segment"):
        assert g.observed_share.sum() == pytest.approx(1.0)
        counts = g.set_index("arm").customers
        expected = counts.sum() * np.array([0.8, 0.2])
        p = stats.chisquare(counts[["champion", "challenger"]].to_numpy(), expected).pvalue
        assert g.srm_p.iloc[0] == pytest.approx(p, rel=1e-12)
    assert "passed" in ex.srm_table(pilot, EN) and "superado" in ex.srm_table(pilot, ES)
    assert ex.srm_sentence(pilot, EN).startswith("Every segment passes")


def _with_results(r, **changes):
    results = r.results.copy()
    for column, value in changes.items():
        results[column] = value
    return dataclasses.replace(r, results=results)


def test_forest_title_states_the_finding(pilot):
    none = _with_results(pilot, p_holm=0.5, p_value=0.5)
    # the primary metric (collected per customer) is read after Holm; the others are not
    assert "survives the multiple-testing correction" in ex.forest_title(
        none, "collected_per_customer", EN
    )
    assert ex.forest_title(none, "payer_rate", EN).endswith("with p < α")
    money = pilot.results.metric == "collected_per_customer"
    high = pilot.results.segment == "High risk"
    results = pilot.results.assign(
        p_holm=np.where(money & high, 0.001, 0.5), estimate=np.where(high, 5000.0, -10.0)
    )
    one = dataclasses.replace(pilot, results=results)
    assert ex.forest_title(one, "collected_per_customer", EN) == (
        "Collected per customer: the challenger is higher in High risk"
    )
    assert "sube en High risk" in ex.forest_title(one, "collected_per_customer", ES)
    payer = pilot.results.metric == "payer_rate"
    secondary = dataclasses.replace(pilot, results=pilot.results.assign(
        p_value=np.where(payer & high, 0.001, 0.5), estimate=np.where(high, 0.05, -0.01)))  # fmt: skip
    assert ex.forest_title(secondary, "payer_rate", EN) == (
        "Payer rate: the challenger is higher in High risk (p < α, uncorrected)"
    )


def _rec(pilot, rows):
    return dataclasses.replace(pilot, recommendations=pd.DataFrame(rows))


def test_recommendation_sentences_for_each_case(pilot):
    win = _rec(pilot, [
        {"segment": "High risk", "challenger": "challenger", "decision": "run challenger", "code": "run_challenger",
         "arm": "challenger", "money_per_month": 1_234_567.0, "money_ci_low": 100.0, "money_ci_high": 2_000_000.0},
        {"segment": "Low risk", "challenger": "challenger", "decision": "keep testing", "code": "keep_testing",
         "arm": None, "extra_customers_needed": 500},
    ])  # fmt: skip
    s = ex.recommendation_sentence(win, EN)
    assert "in High risk would bring 1,234,567 CLP per month" in s and "100 to 2,000,000" in s
    assert "aportaría 1.234.567 CLP por mes" in ex.recommendation_sentence(win, ES)
    table = ex.recommendation_table(win, EN)
    assert "Run the challenger (challenger)" in table and "1,234,567" in table and "500" in table
    assert "Seguir probando" in ex.recommendation_table(win, ES)
    nothing = _rec(pilot, [win.recommendations.iloc[1].to_dict()])
    assert ex.recommendation_sentence(nothing, EN) == (
        "No challenger beats the champion on the evidence so far. Keep testing in Low risk."
    )
    aa = dataclasses.replace(win, config=win.config.model_copy(update={"aa": True}))
    assert ex.recommendation_sentence(aa, EN).startswith("A/A check")


def test_arms_of_fewer_than_five_customers_are_withheld(pilot):
    stats_ = pilot.statistics.copy()
    tiny = (stats_.segment == "Low risk") & (stats_.arm == "challenger")
    stats_.loc[tiny, "n"] = 3
    results = pilot.results.copy()
    results.loc[results.segment == "Low risk", "n_challenger"] = 3
    rec = pilot.recommendations.copy()
    rec.loc[rec.segment == "Low risk", ["money_per_month", "money_ci_low", "money_ci_high"]] = [
        9_876_543.0,
        1.0,
        2.0,
    ]
    r = dataclasses.replace(pilot, statistics=stats_, results=results, recommendations=rec)
    table = ex.recommendation_table(r, EN)
    row = re.search(r"Low risk</td>(.*?)</tr>", table).group(1)
    assert "9,876,543" not in table and "–" in row
    effects = ex.effects_table(r, "payer_rate", EN)
    row = re.search(r"Low risk</td>(.*?)</tr>", effects).group(1)
    assert "&lt;5" in row and "%" not in row
    curves = ex.survival_curves(r)
    assert not ((curves.segment == "Low risk") & (curves.arm == "challenger")).any()
    assert ((curves.segment == "Low risk") & (curves.arm == "champion")).any()
    assert "Low risk" not in ex.recommendation_sentence(r, EN)


def test_names_are_escaped(pilot):
    results = pilot.results.replace({"segment": {"High risk": "<b>A & B | C</b>"}})
    rec = pilot.recommendations.replace({"segment": {"High risk": "<b>A & B | C</b>"}})
    r = dataclasses.replace(pilot, results=results, recommendations=rec)
    for page in (ex.effects_table(r, "payer_rate", EN), ex.recommendation_table(r, EN)):
        assert "<b>A" not in page and "&lt;b&gt;A &amp; B | C&lt;/b&gt;" in page


def test_experiments_without_closed_windows_are_pending(portfolio):
    readouts, pending = ex.read_all(
        [CONFIGS / "sms_call_pilot.yaml", CONFIGS / "discount_offer.yaml"], "2026-06-30", portfolio
    )
    assert [r.config.experiment_id for r in readouts] == ["sms_call_pilot"]
    assert [c.experiment_id for c in pending] == ["discount_offer"]
    assert ex.pending_sentence(pending, "2026-06-30", EN) == (
        "No results yet as of 2026-06-30 (no outcome window has closed): Discount offer."
    )  # the name the config gives it in the report's language
    assert ex.pending_sentence(pending, "2026-06-30", ES).endswith(
        "al 30-06-2026 (ninguna ventana de resultado cerrada): Oferta de descuento."
    )
    # the pilot read as of June leaves out nobody whose window closed by then, and nobody else
    june = readouts[0]
    a = portfolio.tables["assignments"].to_pandas()
    a = a[a.experiment_id == "sms_call_pilot"]
    closed = pd.to_datetime(a.assigned_at) + pd.Timedelta(days=31) <= pd.Timestamp("2026-06-30")
    assert june.statistics.n.sum() == closed.sum()


def test_reading_in_the_future_is_refused(portfolio):
    from collect_kit.errors import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="after the data's extraction date"):
        readout_experiment(CONFIGS / "sms_call_pilot.yaml", as_of="2027-01-31", portfolio=portfolio)


def test_a_whole_experiment_srm_failure_is_said_first(pilot):
    broken = _with_results(pilot, portfolio_srm=True, portfolio_srm_p_value=1e-6)
    for fmt, words in (
        (EN, "Sample-ratio mismatch over the whole experiment"),
        (ES, "Desbalance de la muestra en el experimento completo"),
    ):
        title = ex.title_block(broken, fmt)
        assert words in title and title.index(words) < title.index(
            pilot.config.describe(fmt.language)
        )
        assert ex.recommendation_sentence(broken, fmt).startswith(words)
        assert ex.srm_sentence(broken, fmt).startswith(words)


def test_sequential_status_and_the_overall_row_in_both_languages(portfolio, tmp_path):
    path = _copy(CONFIGS / "sms_call_pilot.yaml", tmp_path / "weekly.yaml")
    path.write_text(path.read_text() + "sequential: true\n")
    r = readout_experiment(path, as_of="2026-03-20", portfolio=portfolio)  # a look 19 days in
    assert "Sequential readout" in ex.decision_note(r, EN)
    assert "Lectura secuencial" in ex.decision_note(r, ES)
    assert "Always-valid" in ex.effects_table(r, "collected_per_customer", EN)
    assert "siempre válido" in ex.effects_table(r, "collected_per_customer", ES)
    assert "All segments" in ex.effects_table(r, "payer_rate", EN)
    assert ex.overall_sentence(r, EN).startswith("All segments together (challenger, Collected")
    assert ex.overall_sentence(r, ES).startswith(
        "Todos los segmentos juntos (challenger, Recaudado"
    )
    # the look read what was known on March 20: customers assigned by March 13
    a = portfolio.tables["assignments"].to_pandas()
    assert r.statistics.n.sum() == (a.experiment_id == "sms_call_pilot").sum()
    # the pilot assigned everyone on March 1: the look of March 15 re-reads the same people
    assert list(r.looks.groupby("look").new_customers.sum()) == [r.statistics.n.sum(), 0]
    assert "From the look of 2026-03-15 nobody new is read" in ex.decision_note(r, EN)
    assert "Desde la revisión del 15-03-2026 no se lee a nadie nuevo" in ex.decision_note(r, ES)
    assert ">New</th>" in ex.looks_table(r, EN) and ">Nuevos</th>" in ex.looks_table(r, ES)
