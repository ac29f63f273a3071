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
from .rules import DEFAULT, Segment, Segmentation, SegmentationError, load
from .sql import to_sql

__all__ = [
    "DEFAULT",
    "Comparison",
    "Explanation",
    "Segment",
    "Segmentation",
    "SegmentationError",
    "assign",
    "compare",
    "explain",
    "lint",
    "load",
    "profile",
    "to_sql",
]
