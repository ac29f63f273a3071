"""Sample-ratio mismatch: are the arms' sizes what the design's weights say they should be?"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from scipy import stats

from ..errors import InvalidParameterError

SRM_ALPHA = 0.001  # a failed check at p < 0.001 (practitioners' convention)


def srm_check(counts: pd.DataFrame, weights: Mapping, segment: str = "segment") -> pd.DataFrame:
    """Chi-square goodness of fit of arm counts against designed weights, per segment.

    ``counts``: rows (segment, arm, customers). ``weights``: arm -> weight, or segment ->
    {arm: weight}. Returns per segment: customers, chi2, p_value and ``srm`` (True when
    p < 0.001: the readout of that segment is untrustworthy). An arm with zero expected
    customers is left out; a segment with one arm has no test (p_value NaN, srm False).
    """
    rows = []
    for seg, g in counts.groupby(segment, sort=False):
        w = weights.get(seg) if all(isinstance(v, Mapping) for v in weights.values()) else weights
        if w is None:
            raise InvalidParameterError(f"weights: none for segment {seg!r}")
        total_w = float(sum(w.values()))
        observed = g.set_index("arm")["customers"].reindex(list(w), fill_value=0).astype(float)
        n = observed.sum()
        expected = pd.Series({a: n * w[a] / total_w for a in w})
        keep = expected > 0
        unknown = set(g.arm) - set(w)
        if unknown:
            raise InvalidParameterError(
                f"segment {seg!r}: arms {sorted(unknown)} are not in the design"
            )
        if keep.sum() < 2 or n == 0:
            rows.append(
                {
                    segment: seg,
                    "customers": int(n),
                    "chi2": float("nan"),
                    "p_value": float("nan"),
                    "srm": False,
                }
            )
            continue
        chi2, p = stats.chisquare(observed[keep], expected[keep])
        rows.append(
            {
                segment: seg,
                "customers": int(n),
                "chi2": float(chi2),
                "p_value": float(p),
                "srm": bool(p < SRM_ALPHA),
            }
        )
    return pd.DataFrame(rows)


def srm_overall(counts: pd.DataFrame, weights: Mapping, segment: str = "segment") -> pd.Series:
    """The whole experiment's check: arm counts pooled over segments against the expected
    sum over segments of n_s x w_s,a (each segment's customers at its designed weights);
    chi-square with arms - 1 degrees of freedom. A failure (p < 0.001) withholds every
    recommendation of the experiment: a broken assignment job shows here first.

    Returns ``customers``, ``chi2``, ``p_value`` and ``srm``.
    """
    nested = all(isinstance(v, Mapping) for v in weights.values())
    expected: dict[str, float] = {}
    observed: dict[str, float] = {}
    for seg, g in counts.groupby(segment, sort=False):
        w = weights.get(seg) if nested else weights
        if w is None:
            raise InvalidParameterError(f"weights: none for segment {seg!r}")
        n = float(g.customers.sum())
        total_w = float(sum(w.values()))
        for arm, weight in w.items():
            expected[arm] = expected.get(arm, 0.0) + n * weight / total_w
            observed.setdefault(arm, 0.0)
        for arm, k in zip(g.arm, g.customers, strict=True):
            observed[arm] = observed.get(arm, 0.0) + float(k)
    arms = [a for a in expected if expected[a] > 0]
    n = sum(observed.values())
    if len(arms) < 2 or n == 0:
        return pd.Series(
            {"customers": int(n), "chi2": float("nan"), "p_value": float("nan"), "srm": False}
        )
    chi2, p = stats.chisquare([observed[a] for a in arms], [expected[a] for a in arms])
    return pd.Series(
        {"customers": int(n), "chi2": float(chi2), "p_value": float(p), "srm": bool(p < SRM_ALPHA)}
    )
