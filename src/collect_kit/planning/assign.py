"""The plan's customer lists for the dialer and SMS systems, one file per treatment.

Within each segment customers are ranked by the bucket of the salted MD5 of their id, the
same hash experiment assignment uses (:mod:`collect_kit.experiments.assign`; ties by id),
so a customer's place in the order never moves from one month to the next. Treatments
take consecutive ranks in the config's order, each as many customers as the plan gives it.
Of each treatment other than the champion, the first ``holdout`` share of its ranked
customers (rounded to the nearest customer) stay on the champion: together with the
champion's own customers they are a randomised control for a champion/challenger test of
the plan (load the files into ``assignments`` with the plan id as ``experiment_id``).

Files: ``<plan_id>-<treatment>.csv`` with ``customer_id``, ``segment``, ``arm`` (the
treatment), the format of ``collect-kit experiment assign``; holdout customers are in the
champion's file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..files import spreadsheet_safe, write_atomic
from ..hashing import bucket_expr
from .solve import Solution


def ranked(population, salt: str) -> pd.DataFrame:
    """customer_id, segment and ``rank`` (0-based, within the segment) of an Ibis table of
    customer_id, segment, ordered by the salted hash."""
    t = population.mutate(bucket=bucket_expr(population.customer_id, salt))
    out = t.select("customer_id", "segment", "bucket").to_pandas()
    out = out.sort_values(["segment", "bucket", "customer_id"], kind="stable")
    out["rank"] = out.groupby("segment").cumcount()
    return out.drop(columns="bucket").reset_index(drop=True)


def arms(plan: Solution, customers: pd.DataFrame, holdout: float) -> pd.DataFrame:
    """Each customer's treatment (``arm``) and whether it is held out, from the plan's
    counts and the ranked customers (:func:`ranked`). The counts per segment must add up
    to the segment's ranked customers."""
    p = plan.problem
    alloc = plan.allocation[plan.allocation.customers > 0].copy()
    order = {t: i for i, t in enumerate(p.treatments)}
    alloc = alloc.sort_values(
        ["segment", "treatment"], key=lambda c: c.map(order) if c.name == "treatment" else c
    )
    alloc["start"] = alloc.groupby("segment").customers.cumsum() - alloc.customers
    alloc["held"] = np.where(
        alloc.treatment == p.champion, 0, np.floor(holdout * alloc.customers + 0.5)
    ).astype(np.int64)
    have = customers.groupby("segment").size()
    want = alloc.groupby("segment").customers.sum()
    if not have.reindex(want.index).fillna(0).astype(int).equals(want.astype(int)):
        raise ConfigError(
            "the plan's customers per segment differ from the customers to assign; plan and "
            "assign from the same data and month end"
        )
    merged = customers.merge(
        alloc[["segment", "treatment", "start", "customers", "held"]], on="segment"
    )
    inside = (merged["rank"] >= merged.start) & (merged["rank"] < merged.start + merged.customers)
    merged = merged[inside]
    merged["holdout"] = merged["rank"] < merged.start + merged.held
    merged["arm"] = np.where(merged.holdout, p.champion, merged.treatment)
    return merged[["customer_id", "segment", "treatment", "arm", "holdout"]].reset_index(drop=True)


def export(
    plan: Solution, customers: pd.DataFrame, holdout: float, folder: str | os.PathLike, plan_id: str
) -> pd.DataFrame:
    """Write one CSV per treatment with customers into ``folder`` (module docstring);
    returns per segment x treatment the planned customers, those held out and those
    exported under the treatment."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"--export: '{folder}' is not a folder")
    a = arms(plan, customers, holdout)
    files = {arm: spreadsheet_safe(rows[["customer_id", "segment", "arm"]])
             for arm, rows in a.groupby("arm", sort=False)}  # fmt: skip
    for arm, rows in files.items():
        write_atomic(folder / f"{plan_id}-{arm}.csv", lambda tmp, r=rows: r.to_csv(tmp, index=False),
                     "--export")  # fmt: skip
    return (
        a.groupby(["segment", "treatment"], sort=False)
        .agg(planned=("customer_id", "size"), held_out=("holdout", "sum"))
        .assign(exported=lambda d: d.planned - d.held_out)
        .reset_index()
    )
