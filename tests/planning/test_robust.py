"""Robustness: draws of the effects, selection probabilities, the CVaR plan."""

from __future__ import annotations

import numpy as np
import pytest

from collect_kit.planning.problem import Limit, Problem
from collect_kit.planning.robust import cvar, draw_effects, robustness
from collect_kit.planning.solve import solve

SEGMENTS = ("A", "B")
TREATMENTS = ("champion", "sms", "call")
COST = np.array([5.0, 85.0, 655.0])


def problem(se_call_a: float) -> Problem:
    # A: the call beats SMS by 400 net a customer; B: SMS beats the call by 100.
    effect = np.array([[0, 500, 1470], [0, 300, 770]], float)
    se = np.array([[0, 100, se_call_a], [0, 100, 100]], float)
    limits = (Limit("agent_hours", "hour", 1e6, np.array([0, 0, 0.1])),)
    return Problem(SEGMENTS, TREATMENTS, "champion", np.array([1000.0, 1000.0]), effect, se,
                   COST, limits)  # fmt: skip


def test_wider_interval_lowers_the_selection_probability():
    narrow = problem(50.0)
    wide = problem(2000.0)
    p_narrow = robustness(narrow, solve(narrow), draws=400, seed=7).selection
    p_wide = robustness(wide, solve(wide), draws=400, seed=7).selection
    assert p_narrow.treatment.tolist() == ["call", "sms"] == p_wide.treatment.tolist()
    a_narrow, a_wide = p_narrow.probability_best.iloc[0], p_wide.probability_best.iloc[0]
    # the call wins in A while its draw beats SMS's draw: difference 400, sd sqrt(se^2 + 100^2)
    from scipy.stats import norm

    assert a_narrow == pytest.approx(norm.cdf(400 / np.hypot(50, 100)), abs=0.03)
    assert a_wide == pytest.approx(norm.cdf(400 / np.hypot(2000, 100)), abs=0.06)
    assert a_wide < a_narrow - 0.2
    # B's effects did not change: its probability barely moves
    assert p_wide.probability_best.iloc[1] == pytest.approx(
        p_narrow.probability_best.iloc[1], abs=0.08
    )


def test_draws_reproduce_with_the_seed():
    p = problem(300.0)
    assert np.array_equal(draw_effects(p, 50, 3), draw_effects(p, 50, 3))
    assert not np.array_equal(draw_effects(p, 50, 3), draw_effects(p, 50, 4))
    a = robustness(p, solve(p), draws=100, seed=3)
    b = robustness(p, solve(p), draws=100, seed=3)
    assert np.array_equal(a.values, b.values)
    assert a.selection.equals(b.selection)


def test_values_and_cvar_against_a_direct_computation():
    p = problem(300.0)
    plan = solve(p)
    rob = robustness(p, plan, draws=200, seed=11, alpha=0.1)
    E = draw_effects(p, 200, 11)
    s, t = p.candidates()
    direct = (E - COST[t]) @ plan.x
    assert np.allclose(rob.values, direct)
    worst = np.sort(direct)[:20].mean()
    assert cvar(direct, 0.1) == pytest.approx(worst)
    summary = rob.summary.set_index("plan")
    assert summary.loc["chosen", "cvar"] == pytest.approx(worst)
    assert summary.loc["chosen", "mean"] == pytest.approx(direct.mean())
    # the robust plan's CVaR is the best any plan reaches on these draws: at least the
    # chosen plan's and today's
    assert summary.loc["robust", "cvar"] >= summary.loc["chosen", "cvar"] - 1e-6
    assert summary.loc["robust", "cvar"] >= summary.loc["today", "cvar"] - 1e-6
    # and no single-treatment-per-segment plan beats it
    for a in range(3):
        for b in range(3):
            x = np.zeros(len(s))
            x[(s == 0) & (t == a)] = 1000
            x[(s == 1) & (t == b)] = 1000
            assert cvar((E - COST[t]) @ x, 0.1) <= summary.loc["robust", "cvar"] + 1e-6


def test_cvar_of_a_fractional_tail():
    v = np.arange(1.0, 11.0)
    assert cvar(v, 0.25) == pytest.approx((1 + 2 + 0.5 * 3) / 2.5)
