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
