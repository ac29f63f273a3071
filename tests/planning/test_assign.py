"""The plan's customer lists: disjoint, the planned counts, ranked by the salted hash."""

from __future__ import annotations

import ibis
import numpy as np
import pandas as pd
import pytest

from collect_kit.experiments.assign import hash_bucket
from collect_kit.planning.assign import arms, export, ranked
from collect_kit.planning.problem import Problem
from collect_kit.planning.solve import fixed

SALT = "plan-salt"


def population(n_a: int = 1000, n_b: int = 701) -> pd.DataFrame:
    ids = [f"C{i:05d}" for i in range(n_a + n_b)]
    return pd.DataFrame({"customer_id": ids, "segment": ["A"] * n_a + ["B"] * n_b})


def plan(n_a: int = 1000, n_b: int = 701):
    p = Problem(("A", "B"), ("champion", "sms", "call"), "champion", np.array([n_a, n_b], float),
                np.zeros((2, 3)), np.zeros((2, 3)), np.zeros(3))  # fmt: skip
    # A: 400 champion, 350 sms, 250 call; B: 1 champion, 700 call (sms 0)
    x = np.array([400, 350, 250, 1, 0, n_b - 1], float)
    return fixed(p, x)


def test_files_are_disjoint_and_cover_the_planned_counts(tmp_path):
    pop = population()
    customers = ranked(ibis.memtable(pop), SALT)
    summary = export(plan(), customers, 0.1, tmp_path, "p1")
    files = {f.name: pd.read_csv(f) for f in sorted(tmp_path.iterdir())}
    assert set(files) == {"p1-champion.csv", "p1-sms.csv", "p1-call.csv"}
    every = pd.concat(files.values())
    assert list(every.columns) == ["customer_id", "segment", "arm"]
    assert every.customer_id.is_unique and set(every.customer_id) == set(pop.customer_id)
    # held out: round(0.1 x planned) of each new treatment, in the champion's file
    held = {("A", "sms"): 35, ("A", "call"): 25, ("B", "call"): 70}
    counts = every.groupby(["segment", "arm"]).size()
    assert counts["A", "sms"] == 350 - 35 and counts["A", "call"] == 250 - 25
    assert counts["B", "call"] == 700 - 70
    assert counts["A", "champion"] == 400 + 35 + 25 and counts["B", "champion"] == 1 + 70
    s = summary.set_index(["segment", "treatment"])
    for key, n in held.items():
        assert s.loc[key, "held_out"] == n
        assert s.loc[key, "planned"] == s.loc[key, "held_out"] + s.loc[key, "exported"]


def test_ranks_follow_the_salted_md5_and_holdout_is_the_first_share():
    pop = population()
    customers = ranked(ibis.memtable(pop), SALT)
    # independent ranking in Python: hashlib md5 of salt + id, within segment, ties by id
    ref = pop.assign(bucket=[hash_bucket(c, SALT) for c in pop.customer_id])
    ref = ref.sort_values(["segment", "bucket", "customer_id"])
    assert customers.customer_id.tolist() == ref.customer_id.tolist()
    a = arms(plan(), customers, 0.1)
    a_sms = a[(a.segment == "A") & (a.treatment == "sms")]
    order = ref[ref.segment == "A"].customer_id.tolist()
    assert a_sms.customer_id.tolist() == order[400:750]  # after the champion's 400
    assert a_sms.holdout.tolist() == [True] * 35 + [False] * 315


def test_a_customer_keeps_its_place_when_others_arrive():
    pop = population()
    new = pd.DataFrame({"customer_id": [f"N{i:04d}" for i in range(500)],
                        "segment": ["A", "B"] * 250})  # fmt: skip
    before = ranked(ibis.memtable(pop), SALT)
    after = ranked(ibis.memtable(pd.concat([new, pop])), SALT)
    old = set(before.customer_id)
    kept = after[after.customer_id.isin(old)]
    for seg in ("A", "B"):
        assert (kept[kept.segment == seg].customer_id.tolist()
                == before[before.segment == seg].customer_id.tolist())  # fmt: skip


@pytest.mark.parametrize("holdout", [0.0, 0.05, 0.333])
def test_holdout_exact_within_one(holdout):
    customers = ranked(ibis.memtable(population()), SALT)
    a = arms(plan(), customers, holdout)
    for _, g in a[a.treatment != "champion"].groupby(["segment", "treatment"]):
        assert abs(g.holdout.sum() - holdout * len(g)) <= 0.5 + 1e-9


def test_counts_that_do_not_match_the_customers_are_refused():
    customers = ranked(ibis.memtable(population(999, 701)), SALT)
    with pytest.raises(ValueError, match="differ from the customers"):
        arms(plan(), customers, 0.1)
