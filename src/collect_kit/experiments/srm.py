"""Sample-ratio mismatch: are the arms' sizes what the design's weights say they should be?

Two levels, both chi-square goodness of fit alarming at p < 0.001: each segment's arm
counts against its weights (:func:`srm_check`), and the whole experiment's counts pooled
over segments against the sum over segments of n_s x w_s,a (:func:`srm_overall`), where a
broken assignment job shows first. Vectorised over segments (and over looks with ``by``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
from scipy import stats

from ..errors import InvalidParameterError

SRM_ALPHA = 0.001  # a failed check at p < 0.001 (practitioners' convention)


def design_shares(weights: Mapping, segments) -> pd.DataFrame:
    """segment, arm, share (the designed weight normalised within the segment), position
    (0 = the champion) for each segment; ``weights`` is arm -> weight or segment -> {arm:
    weight}."""
    nested = all(isinstance(v, Mapping) for v in weights.values())
    rows = []
    for seg in dict.fromkeys(segments):
        w = weights.get(seg) if nested else weights
        if w is None:
            raise InvalidParameterError(f"weights: none for segment {seg!r}")
        total = float(sum(w.values()))
        rows += [(seg, arm, v / total, i) for i, (arm, v) in enumerate(w.items())]
    return pd.DataFrame(rows, columns=["segment", "arm", "share", "position"])


def _observed(counts: pd.DataFrame, weights: Mapping, segment: str, by: Sequence[str]):
    by = list(by)
    design = design_shares(weights, counts[segment]).rename(columns={"segment": segment})
    unknown = counts.merge(design, on=[segment, "arm"], how="left", indicator=True)
    unknown = unknown[unknown._merge == "left_only"]
    if len(unknown):
        seg = unknown[segment].iloc[0]
        arms = sorted(set(unknown.loc[unknown[segment] == seg, "arm"]))
        raise InvalidParameterError(f"segment {seg!r}: arms {arms} are not in the design")
    groups = counts[by + [segment]].drop_duplicates()
    grid = groups.merge(design, on=segment) if len(groups) else design.iloc[:0]
    grid = grid.merge(
        counts[by + [segment, "arm", "customers"]], on=by + [segment, "arm"], how="left"
    )
    grid["customers"] = grid.customers.fillna(0).astype(float)
    grid["n"] = grid.groupby(by + [segment]).customers.transform("sum")
    grid["expected"] = grid.n * grid.share
    return grid


def _chi2(grid: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    g = grid[grid.expected > 0].assign(term=lambda d: (d.customers - d.expected) ** 2 / d.expected)
    out = g.groupby(keys, sort=False).agg(chi2=("term", "sum"), arms=("term", "size"))
    customers = grid.groupby(keys, sort=False).customers.sum()
    out = out.reindex(customers.index)
    out["customers"] = customers.astype(int)
    ok = (out.arms >= 2) & (out.customers > 0)
    out["chi2"] = out.chi2.where(ok)
    out["p_value"] = stats.chi2.sf(out.chi2, out.arms.where(ok) - 1)
    # customers in an arm designed at weight 0: the assignment is broken whatever the rest say
    impossible = (grid.expected <= 0) & (grid.customers > 0)
    impossible = impossible.groupby([grid[k] for k in keys], sort=False).any()
    impossible = impossible.reindex(out.index, fill_value=False).astype(bool)
    out.loc[impossible, "chi2"] = float("inf")
    out.loc[impossible, "p_value"] = 0.0
    out["srm"] = (out.p_value < SRM_ALPHA).fillna(False).astype(bool)
    return out.drop(columns="arms").reset_index()


def srm_check(
    counts: pd.DataFrame, weights: Mapping, segment: str = "segment", by: Sequence[str] = ()
) -> pd.DataFrame:
    """Chi-square goodness of fit of arm counts against designed weights, per segment.

    ``counts``: rows (``by`` columns, segment, arm, customers). ``weights``: arm -> weight,
    or segment -> {arm: weight}. Returns per (``by``, segment): customers, chi2, p_value and
    ``srm`` (True when p < 0.001: the readout of that segment is untrustworthy). An arm
    designed at weight 0 with nobody in it is left out; a segment with one arm has no test (p_value
    NaN, srm False). Customers in an arm designed at weight 0 fail the check outright
    (chi2 inf, p 0).
    """
    grid = _observed(counts, weights, segment, by)
    return _chi2(grid, list(by) + [segment])[
        list(by) + [segment, "customers", "chi2", "p_value", "srm"]
    ]


def srm_overall(
    counts: pd.DataFrame, weights: Mapping, segment: str = "segment", by: Sequence[str] = ()
) -> pd.DataFrame:
    """The whole experiment's check per ``by`` group: arm counts pooled over segments
    against the sum over segments of n_s x w_s,a (each segment's customers at its designed
    weights); chi-square with arms - 1 degrees of freedom. A failure (p < 0.001) withholds
    every recommendation of the experiment. Returns (``by``), customers, chi2, p_value, srm.
    """
    by = list(by)
    grid = _observed(counts, weights, segment, by)
    pooled = grid.groupby(by + ["arm"], sort=False)[["customers", "expected"]].sum().reset_index()
    if not by:
        pooled["_all"] = 0
    return _chi2(pooled, by or ["_all"]).drop(columns=[c for c in ("_all",) if not by])
