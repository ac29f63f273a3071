"""Who is in each segment: a few averages per segment, computed on the engine."""

from __future__ import annotations

import pandas as pd

from ..engine import TableLike, inputs
from .compile import assigned
from .rules import Segmentation

#: Output column -> (snapshot column, how): mean of a number, or share of rows where true.
PROFILE = {
    "mean_score": ("score", "mean"),
    "mean_days_past_due": ("max_days_past_due", "mean"),
    "mean_broken_promises": ("broken_promises", "mean"),
    "company_share": ("customer_type", "company"),
    "valid_phone_share": ("has_valid_phone", "true"),
    "new_share": ("is_new", "true"),
}


def profile(segmentation: Segmentation, snapshot: TableLike) -> pd.DataFrame:
    """Per segment (cascade order): customers and the :data:`PROFILE` averages.

    ``snapshot``: pandas, Arrow or Ibis.
    Means ignore missing values (``mean_score`` is over customers with a score); shares are
    fractions of the segment's customers. Columns missing from the snapshot are skipped.
    """
    with inputs({"snapshot": snapshot}, required=["snapshot"]) as t:
        x = assigned(segmentation, t["snapshot"])
        aggs = {"customers": x.count()}
        for name, (col, how) in PROFILE.items():
            if col not in x.columns:
                continue
            if how == "mean":
                aggs[name] = x[col].mean()
            elif how == "true":
                aggs[name] = x[col].fill_null(False).cast("float64").mean()
            else:
                aggs[name] = (x[col] == how).fill_null(False).cast("float64").mean()
        out = x.group_by("segment").aggregate(**aggs).to_pandas()
    out = out.set_index("segment").reindex(segmentation.names)
    out["customers"] = out["customers"].fillna(0).astype(int)
    return out.reset_index()
