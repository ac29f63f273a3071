"""Segmentation: declarative cascade rules, evaluation on the engine, diagnostics, SQL.

``load`` a YAML (the rule language is documented in :mod:`.rules`), ``assign`` customers,
``explain`` the result, ``compare`` two segmentations or two snapshots, ``to_sql`` for the
production system.
"""

from .compare import Comparison, compare
from .compile import assign
from .explain import Explanation, explain
from .lint import lint
from .profile import profile
from .rules import DEFAULT, RiskModel, Segment, Segmentation, SegmentationError, load
from .scored import portfolio_snapshot, with_p_pay
from .sql import to_sql

__all__ = [
    "DEFAULT",
    "Comparison",
    "Explanation",
    "RiskModel",
    "Segment",
    "Segmentation",
    "SegmentationError",
    "assign",
    "compare",
    "explain",
    "lint",
    "load",
    "portfolio_snapshot",
    "profile",
    "to_sql",
    "with_p_pay",
]
