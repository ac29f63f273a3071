"""Page 1's findings from hand-made numbers: each case, its money at stake, the ranking and
the sentences in English and Spanish."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from collect_kit import findings
from collect_kit.reports.format import Formatter
from collect_kit.reports.portfolio import finding_sentence
from collect_kit.sources import Problem

EN, ES = Formatter("en", "CLP"), Formatter("es", "CLP")


def recovery(value, previous, denominator=1_000_000_000.0, driver=None):
    return findings.kpi_finding("recovery_rate", value, previous, denominator, "fraction",
                                "up", "denominator", driver=driver)  # fmt: skip


def test_a_fall_of_a_rate_is_bad_with_its_money_driver_and_action():
    f = recovery(0.25, 0.27, driver=("dpd_bucket", "31-60", -0.015))
    assert (f.kind, f.good, f.action) == ("fall", False, "look_at_bucket")
    # 2 points of a 1 000 M opening overdue balance
    assert f.money == pytest.approx(0.02 * 1e9)
    en = finding_sentence(f, EN)
    assert en == (
        "Recovery rate fell 2.0 points to 25.0 %, driven by customers 31-60 days past due at "
        "the start of the month (−1.5 points) (about CLP 20.0 M a month at stake). "
        "Look first at the collection of customers 31-60 days past due."
    )
    es = finding_sentence(f, ES)
    assert es.startswith("Tasa de recuperación bajó 2,0 puntos hasta 25,0 %, explicado por los "
                         "clientes con 31-60 días de mora")  # fmt: skip
    assert "CLP 20,0 millones al mes en juego" in es and "Revise primero" in es


def test_a_rise_of_a_rate_where_down_is_good_is_bad():
    f = findings.kpi_finding("overdue_ratio", 0.33, 0.30, 5e9, "fraction", "down",
                             "denominator")  # fmt: skip
    assert (f.kind, f.good, f.action) == ("rise", False, "investigate")
    assert f.money == pytest.approx(0.03 * 5e9)
    assert finding_sentence(f, EN).endswith("Find out why before next month's run.")
    good = findings.kpi_finding("overdue_ratio", 0.28, 0.30, 5e9, "fraction", "down",
                                "denominator")  # fmt: skip
    assert (good.kind, good.good, good.action) == ("fall", True, "keep_course")
    assert finding_sentence(good, ES).endswith("Mantenga el rumbo.")


@pytest.mark.parametrize(
    ("stake", "kwargs", "expected"),
    [
        ("customers", {"average_balance": 400_000.0}, 0.02 * 10_000 * 400_000.0),
        ("total", {}, 1.0e8),
        ("sales_days", {"days_in_month": 31}, 3.0 * 3.1e9 / 31),
    ],
)
def test_money_at_stake_per_kind_of_kpi(stake, kwargs, expected):
    if stake == "customers":  # payer rate over 10 000 delinquent customers
        f = findings.kpi_finding(
            "payer_rate", 0.30, 0.32, 10_000, "fraction", "up", stake, **kwargs
        )
    elif stake == "total":  # collected: its own change
        f = findings.kpi_finding("collected", 9.0e8, 1.0e9, 1.0, "currency", "up", stake, **kwargs)
    else:  # DSO 3 days longer on 3 100 M of credit sales in a 31-day month
        f = findings.kpi_finding("dso", 45.0, 42.0, 3.1e9, "days", "down", stake, **kwargs)
    assert f.money == pytest.approx(expected)
    assert f.good is False


def test_no_change_missing_and_not_available():
    same = recovery(0.2501, 0.2500)
    assert same.kind == "unchanged" and same.money == 0
    assert finding_sentence(same, EN) == "Recovery rate was unchanged at 25.0 %."
    assert finding_sentence(same, ES) == "Tasa de recuperación se mantuvo en 25,0 %."
    missing = recovery(math.nan, 0.25)
    assert missing.kind == "missing" and missing.action == "check_data"
    assert "no figure this month" in finding_sentence(missing, EN)
    assert "sin cifra este mes" in finding_sentence(missing, ES)
    absent = findings.kpi_finding("dso", None, None, None, "days", "down", "sales_days",
                                  missing_input="receivables")  # fmt: skip
    assert absent.kind == "not_available"
    assert finding_sentence(absent, EN) == (
        "DSO (standard): Not available: the data has no dated receivables."
    )
    assert "no trae" in finding_sentence(absent, ES)


def test_nothing_to_act_on():
    top = findings.rank([recovery(0.25, 0.25), recovery(0.3, math.nan)])
    assert [f.kind for f in top] == ["nothing"]
    assert finding_sentence(top[0], EN).startswith("Nothing to act on this month")
    assert finding_sentence(top[0], ES).startswith("Nada que hacer este mes")


def decisions(*rows):
    columns = ["segment", "challenger", "code", "reason", "money_per_month", "money_ci_low",
               "money_ci_high", "extra_customers_needed"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def test_test_decisions_rank_by_money_and_quality_notes_last():
    d = decisions(
        ("61-90", "challenger", "stop_challenger", "worse", -1.4e8, -3.4e8, 5.0e7, math.nan),
        ("181+", "challenger", "stop_challenger", "futile", math.nan, math.nan, math.nan, math.nan),
        ("91-180", "challenger", "keep_testing", "", math.nan, math.nan, math.nan, 32_098),
        ("A", "challenger", "run_challenger", "", 2.0e7, 1.0e7, 3.0e7, math.nan),
        ("B", "challenger", "run_challenger", "", 1.0e7, -1.0e6, 2.0e7, math.nan),
    )
    tests = findings.test_findings("discount_offer", d)
    assert {f.kind: f.segments for f in tests} == {
        "stop_worse": ("61-90",), "stop_futile": ("181+",), "keep_testing": ("91-180",),
        "run_challenger": ("A", "B"),
    }  # fmt: skip
    run = next(f for f in tests if f.kind == "run_challenger")
    assert run.money == pytest.approx(3.0e7) and run.detail["low"] == pytest.approx(9.0e6)
    kpi = recovery(0.25, 0.27)  # 20 M at stake
    warning = Problem("receivables", "r.csv", "reported_balance", "reported_balance_differs",
                      12, "...", ("R000123",))  # fmt: skip
    quality = findings.quality_findings([warning])
    top = findings.rank([*quality, kpi, *tests], most=5)
    assert [f.kind for f in top] == ["stop_worse", "run_challenger", "fall", "stop_futile",
                                     "keep_testing"]  # fmt: skip
    assert findings.rank([*quality, kpi], most=5)[-1].source == "quality"
    words = finding_sentence(quality[0], EN)
    assert words == ("Data quality: 12 rows of receivables.reported_balance to check "
                     "(reported_balance_differs); see collect-kit validate.")  # fmt: skip
    assert "R000123" not in words
    stop = finding_sentence(top[0], EN)
    assert stop == ("discount_offer: stop challenger in 61-90; while it runs it loses CLP 140 M "
                    "a month (95 % CI CLP -50.0 M to CLP 340 M).")  # fmt: skip
    named = Formatter("es", "CLP", {"discount_offer": "Oferta de descuento",
                                    "challenger": "Descuento del 15 %", "61-90": "61-90 días"})  # fmt: skip
    assert finding_sentence(top[0], named).startswith(
        "Oferta de descuento: detener Descuento del 15 % en 61-90 días; mientras funciona "
        "pierde CLP 140 millones al mes"
    )
    keep = finding_sentence(top[-1], EN)
    assert "keep testing challenger in 91-180 (32,098 more customers)" in keep


def test_risk_lights_carry_the_bands_expected_loss():
    calibration = pd.DataFrame({"band": [1, 2, 3, 4], "observed_payer_rate": [0.1, 0.3, 0.6, 0.9],
                                "predicted_payer_rate": [0.2, 0.3, 0.55, 0.8],
                                "traffic_light": ["red", "green", "yellow", "red"]})  # fmt: skip
    loss = pd.DataFrame({"band": [1, 2, 3, 4], "expected_loss": [9.0e8, 5.0e8, 1.0e8, 2.0e7]})
    act, watch = findings.risk_findings(calibration, loss)
    assert (act.kind, act.segments, act.money) == ("red", ("1", "4"), pytest.approx(9.2e8))
    assert (watch.kind, watch.segments) == ("yellow", ("3",)) and math.isnan(watch.money)
    assert finding_sentence(act, EN) == (
        "Risk model out of line (act) in band 1: 10.0 % paid against 20.0 % predicted; band 4: "
        "90.0 % paid against 80.0 % predicted; CLP 920 M of expected loss rests on these "
        "customers, so review the propensity model before relying on it."
    )
    assert finding_sentence(watch, ES) == (
        "Modelo de riesgo a vigilar en tramo 3: pagó el 60,0 % frente al 55,0 % previsto."
    )
    assert findings.risk_findings(calibration.assign(traffic_light="green"), loss) == []


def test_contributions_add_up_and_the_driver_goes_the_way_of_the_change():
    # now: opening book 300 over three buckets recovering 10, 20, 30 -> 0.20;
    # before: 200, 30 recovered in 1-30 -> 0.15
    now = pd.DataFrame({"bucket": ["1-30", "31-60", "91-180"], "numerator": [10.0, 20.0, 30.0],
                        "denominator": [100.0, 100.0, 100.0]})  # fmt: skip
    before = pd.DataFrame({"bucket": ["1-30", "181+"], "numerator": [30.0, 0.0],
                           "denominator": [100.0, 100.0]})  # fmt: skip
    c = findings.contributions(now, before, "bucket").set_index("group")
    assert c.loc["1-30", "now"] == pytest.approx(10 / 300)
    assert c.loc["1-30", "before"] == pytest.approx(30 / 200)
    assert c.change.sum() == pytest.approx(0.20 - 0.15)
    assert findings.largest_driver(c.reset_index(), 0.05, "dpd_bucket") == (
        "dpd_bucket",
        "91-180",
        pytest.approx(0.10),
    )
    assert findings.largest_driver(c.reset_index(), -0.05, "dpd_bucket")[1] == "1-30"
    assert findings.largest_driver(c.reset_index(), 0.0, "dpd_bucket") is None
    f = findings.with_driver(recovery(0.20, 0.15), ("segment", "High risk", 0.2))
    assert f.driver == ("segment", "High risk", 0.2) and f.action == "keep_course"


def test_tiles_say_which_way_is_good_and_show_the_target(frames):
    from collect_kit import kpis
    from collect_kit.reports.portfolio import tiles, tiles_html

    t = tiles(frames, "2026-10-31", EN, targets={"recovery_rate": 0.30}).set_index("kpi")
    for name, row in t.iterrows():
        better = kpis.REGISTRY[name].better
        rose = row.value > row.previous
        assert (
            row.marker
            == f"{'up' if rose else 'down'}_{'good' if rose == (better == 'up') else 'bad'}"
        )
    assert t.shown["collected"] == EN.short_money(t.value["collected"])
    assert t.shown["dso"].endswith(" days") and t.previous_shown["dso"].endswith(" days")
    page = tiles_html(t.reset_index(), EN)
    assert "target 30.0 %" in page and page.count("ck-tile-label") == len(t)
    assert f"last month {EN.percent(t.previous['payer_rate'])}" in page


def test_a_config_title_per_language(tmp_path):
    from collect_kit.reports.config import ReportConfig

    cfg = ReportConfig(name="m", title={"en": "Monthly report", "es": "Informe mensual"},
                       sources="s.yaml", segmentation="g.yaml", notebooks=["segmentation"])  # fmt: skip
    assert (cfg.title_in("es"), cfg.title_in("en"), cfg.title_in("pt")) == (
        "Informe mensual", "Monthly report", "Monthly report")  # fmt: skip
