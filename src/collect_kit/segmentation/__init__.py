"""Segmentation: declarative cascade rules, evaluation on the engine, diagnostics, SQL.

``load`` a YAML (the rule language is documented in :mod:`.rules`), ``assign`` customers,
``explain`` the result, ``compare`` two segmentations or two snapshots, ``to_sql`` for the
production system.
"""

from .compile import assign
from .rules import DEFAULT, Segment, Segmentation, SegmentationError, load

__all__ = ["DEFAULT", "Segment", "Segmentation", "SegmentationError", "assign", "load"]
