"""Who is in each segment: a few averages per segment, computed on the engine."""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import pandas as pd

from ..engine import TableLike, inputs, pull
from ..fields import top_value
from .compile import named, segment_codes
from .rules import Segmentation, SegmentationError

#: Output column -> (snapshot column, how): mean of a number, or share of rows where true.
PROFILE = {
    "mean_score": ("score", "mean"),
    "mean_days_past_due": ("max_days_past_due", "mean"),
    "mean_broken_promises": ("broken_promises", "mean"),
    "company_share": ("customer_type", "company"),
    "valid_phone_share": ("has_valid_phone", "true"),
    "new_share": ("is_new", "true"),
}


def profile(
    segmentation: Segmentation, snapshot: TableLike, columns: Sequence[str] = ()
) -> pd.DataFrame:
    """Per segment (cascade order): customers and the :data:`PROFILE` averages.

    ``snapshot``: pandas, Arrow or Ibis. ``columns``: more snapshot columns to profile,
    such as a team's own fields: a number gives ``mean_<column>``, a true/false column
    ``<column>_share`` (share true) and a text column ``top_<column>`` (its most frequent
    value in the segment; ties: the smallest).
    Means ignore missing values (``mean_score`` is over customers with a score); shares are
    fractions of the customers with a value (NaN when no customer has one, e.g. no phone
    column in the source). Columns missing from the snapshot are skipped.
    """
    with inputs({"snapshot": snapshot}, required=["snapshot"]) as t:
        snap = t["snapshot"]
        x = snap.mutate(_segment=segment_codes(segmentation, snap))
        unknown = [c for c in columns if c not in snap.columns]
        if unknown:
            raise SegmentationError(
                f"columns: {', '.join(unknown)} not in the snapshot; has: {', '.join(snap.columns)}"
            )
        aggs = {"customers": x.count()}
        for name, (col, how) in PROFILE.items():
            if col not in x.columns:
                continue
            if how != "company" and not (x[col].type().is_numeric() or x[col].type().is_boolean()):
                # an all-null column that came back untyped (a feature not available)
                aggs[name] = ibis.null("float64")
            elif how == "mean":
                aggs[name] = x[col].mean()
            elif how == "true":
                aggs[name] = x[col].cast("float64").mean()
            else:
                aggs[name] = (x[col] == how).cast("float64").mean()
        tops = []
        for col in columns:
            kind = x[col].type()
            if kind.is_boolean():
                aggs[f"{col}_share"] = x[col].cast("float64").mean()
            elif kind.is_numeric():
                aggs[f"mean_{col}"] = x[col].mean()
            else:
                tops.append(col)
        out = pull(x.group_by("_segment").aggregate(**aggs), "segment profile")
        for col in tops:
            out = out.merge(_top_value(x, col), on="_segment", how="left")
    out = out.set_index(named(segmentation, out.pop("_segment")).rename("segment"))
    out = out.reindex(segmentation.names)
    out["customers"] = out["customers"].fillna(0).astype(int)
    return out.reset_index()


def _top_value(x, column: str) -> pd.DataFrame:
    """Per segment code, the most frequent non-null value of ``column`` (ties: the smallest)."""
    top = top_value(x, column, by="_segment")
    return pull(top.select("_segment", **{f"top_{column}": top[column].cast("string")}), column)
