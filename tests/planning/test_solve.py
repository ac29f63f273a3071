"""The optimiser against plans solved by hand."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from collect_kit.errors import InfeasiblePlanError
from collect_kit.planning.problem import Limit, Problem
from collect_kit.planning.solve import counts, solve, today

# Three segments, three treatments. Channel prices: e-mail 5, SMS 40, call 650 and 6 agent
# minutes. champion = 1 e-mail (5 a customer); sms = 2 SMS + 1 e-mail (85);
# call = 1 call + 1 e-mail (655, 0.1 agent hours).
SEGMENTS = ("A", "B", "C")
TREATMENTS = ("champion", "sms", "call")
CUSTOMERS = np.array([1000.0, 2000.0, 500.0])
EFFECT = np.array([[0, 200, 2000], [0, 100, 1200], [0, 50, 3000]], float)
COST = np.array([5.0, 85.0, 655.0])
HOURS = np.array([0.0, 0.0, 0.1])
SMS_SPEND = np.array([0.0, 80.0, 0.0])


def problem(agent_hours=200.0, sms_budget=500_000.0, total=2_000_000.0, **kw) -> Problem:
    limits = (
        Limit("agent_hours", "hour", agent_hours, HOURS),
        Limit("budget:sms", "currency", sms_budget, SMS_SPEND),
        Limit("total_cost", "currency", total, COST),
    )
    return Problem(SEGMENTS, TREATMENTS, "champion", CUSTOMERS, EFFECT, np.full((3, 3), 10.0),
                   COST, limits, **kw)  # fmt: skip


def test_hand_solved_plan_and_its_shadow_price():
    # Net per customer (effect - cost): champion -5 everywhere; sms A 115, B 15, C -35;
    # call A 1345, B 545, C 2345. Without limits every segment takes the call (350 hours).
    # With 200 hours the calls go where an hour earns most over the next best treatment:
    # C (2345 + 5) / 0.1 = 23 500 an hour, A (1345 - 115) / 0.1 = 12 300, B (545 - 15) / 0.1
    # = 5 300. C takes 50 hours, A 100, B the last 50: 500 of its customers on the call, the
    # other 1 500 on SMS. One more hour moves 10 more B customers from SMS to the call:
    # 5 300 a hour, the shadow price.
    plan = solve(problem())
    a = plan.allocation.set_index(["segment", "treatment"]).customers
    expected = {("A", "call"): 1000, ("B", "call"): 500, ("B", "sms"): 1500, ("C", "call"): 500}
    assert {k: v for k, v in a.items() if v} == expected
    value = 1000 * 1345 + 500 * 545 + 1500 * 15 + 500 * 2345
    assert plan.value == pytest.approx(value)
    lim = plan.limits.set_index("name")
    assert lim.loc["agent_hours", "binding"]
    assert lim.loc["agent_hours", "shadow_price"] == pytest.approx(5300.0)
    # every other capacity has at least 10 % to spare and is worth nothing
    spend = 1000 * 655 + 500 * 655 + 1500 * 85 + 500 * 655
    assert lim.loc["total_cost", "used"] == pytest.approx(spend)
    assert lim.loc["budget:sms", "used"] == pytest.approx(1500 * 80)
    for name in ("budget:sms", "total_cost"):
        assert lim.loc[name, "slack"] >= 0.1 * lim.loc[name, "limit"]
        assert lim.loc[name, "shadow_price"] == pytest.approx(0.0, abs=1e-9)
    # the shadow price is the value of one more hour, re-solved
    assert solve(problem(agent_hours=201.0)).value - plan.value == pytest.approx(5300.0)


def test_today_and_best_ignoring_capacity():
    p = problem()
    now = today(p)
    assert now.value == pytest.approx(-5 * 3500)
    assert now.allocation.groupby("treatment").customers.sum()["champion"] == 3500
    free = solve(p, limits=False)
    a = free.allocation.set_index(["segment", "treatment"]).customers
    assert {k: v for k, v in a.items() if v} == {("A", "call"): 1000, ("B", "call"): 2000,
                                                   ("C", "call"): 500}  # fmt: skip
    assert free.limits.set_index("name").loc["agent_hours", "used"] == pytest.approx(350.0)


def test_minimum_treatment_beyond_capacity_names_the_capacity():
    # every customer must get at least a call (the champion here: 1 call + 1 e-mail; the
    # challenger adds 2 SMS): 3 500 customers x 0.1 hours = 350 hours for 200
    hours = np.array([0.1, 0.1])
    cost = np.array([655.0, 735.0])
    limits = (Limit("agent_hours", "hour", 200.0, hours),
              Limit("total_cost", "currency", 3_000_000.0, cost))  # fmt: skip
    p = Problem(SEGMENTS, ("call", "call_sms"), "call", CUSTOMERS, np.zeros((3, 2)) + 50,
                np.zeros((3, 2)), cost, limits, minimum_treatment="call")  # fmt: skip
    with pytest.raises(InfeasiblePlanError) as info:
        solve(p)
    [short] = info.value.shortfalls
    assert short["name"] == "agent_hours"
    assert short["needed"] == pytest.approx(350.0)
    assert short["short_by"] == pytest.approx(150.0)
    assert "agent hours: the plan needs 350, capacity 200: short by 150" in str(info.value)
    assert "at least 'call'" in str(info.value)
    again = pickle.loads(pickle.dumps(info.value))
    assert again.shortfalls == info.value.shortfalls and str(again) == str(info.value)


def test_rules_share_and_champion():
    # the call may take at most 40 % of a segment; segment A keeps the champion
    share = np.ones((3, 3))
    share[:, 2] = 0.4
    plan = solve(problem(agent_hours=1000.0, max_share=share,
                         keep_champion=np.array([True, False, False])))  # fmt: skip
    a = plan.allocation.set_index(["segment", "treatment"]).customers
    assert a["A", "champion"] == 1000
    assert a["B", "call"] == 800 and a["B", "sms"] == 1200
    assert a["C", "call"] == 200 and a["C", "champion"] == 300  # SMS loses money in C


def test_integer_rule_min_share_and_shadow_price_at_the_chosen_plan():
    # min_share 0.3: a treatment used in a segment takes none or at least 30 % of it. The
    # LP's B split (500 of 2 000 on the call, 25 %) is not allowed. Leaving B on SMS and 50
    # hours idle is worth 1 345 000 (A) + 30 000 (B) + 1 172 500 (C) = 2 547 500. Opening
    # B's call needs 600 customers (60 hours): A must free 10+ hours, but A's SMS then takes
    # under 30 % unless it takes 300 customers, so A frees 30 hours: A 700 call + 300 SMS,
    # B 800 call + 1 200 SMS, C 500 call: 941 500 + 34 500 + 436 000 + 18 000 + 1 172 500
    # = 2 602 500, the better one. (C giving hours instead loses 2 350 a customer to gain
    # 530.) At that plan one more hour puts 10 more B customers on the call: 5 300.
    plan = solve(problem(min_share=0.3))
    a = plan.allocation.set_index(["segment", "treatment"]).customers
    assert {k: v for k, v in a.items() if v} == {
        ("A", "call"): 700, ("A", "sms"): 300, ("B", "call"): 800, ("B", "sms"): 1200,
        ("C", "call"): 500,
    }  # fmt: skip
    assert plan.value == pytest.approx(2_602_500.0)
    assert plan.integer
    lim = plan.limits.set_index("name")
    assert lim.loc["agent_hours", "used"] == pytest.approx(200.0)
    assert lim.loc["agent_hours", "shadow_price"] == pytest.approx(5300.0)


def test_integer_rule_max_treatments_per_segment():
    # one treatment per segment: B cannot split; 200 hours give A and C the call (150 h),
    # B takes SMS whole (the call for all of B needs 200 hours more)
    plan = solve(problem(max_treatments=1))
    a = plan.allocation.set_index(["segment", "treatment"]).customers
    assert (plan.allocation.customers > 0).groupby(plan.allocation.segment).sum().max() == 1
    assert a["B", "sms"] == 2000


def test_counts_round_within_each_segment():
    p = problem()
    x = np.array([333.4, 333.3, 333.3, 0.5, 1999.5, 0.0, 250.2, 249.8, 0.0])
    n = counts(p, x)
    assert n.reshape(3, 3).sum(axis=1).tolist() == [1000, 2000, 500]
    assert (np.abs(n - x) < 1).all()
