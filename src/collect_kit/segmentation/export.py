"""Write customer_id, segment and strategy for the dialer or campaign tool."""

from __future__ import annotations

import os
from pathlib import Path

from ibis.expr.types import Table

from ..files import spreadsheet_safe, write_atomic
from .compile import assigned
from .rules import Segmentation, SegmentationError

FORMATS = {".csv": "csv", ".parquet": "parquet"}


def export_assignments(
    segmentation: Segmentation, snapshot: Table, path: str | os.PathLike
) -> Path:
    """Write one row per customer (customer_id, segment, strategy) to CSV or Parquet.

    The format follows the extension (``.csv`` or ``.parquet``). The file is written under a
    temporary name and renamed when complete, so a reader never sees half a file. In a CSV,
    segment and strategy names (and ids) that a spreadsheet would run as a formula (text
    starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) are prefixed
    with ``'``.
    """
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise SegmentationError(f"--export: '{path}' must end in .csv or .parquet")
    if not path.parent.is_dir():
        raise SegmentationError(f"--export: folder '{path.parent}' does not exist")
    out = assigned(segmentation, snapshot).select("customer_id", "segment", "strategy")
    if fmt == "csv":
        return write_atomic(path, spreadsheet_safe(out).order_by("customer_id").to_csv, "--export")
    return write_atomic(path, out.order_by("customer_id").to_parquet, "--export")
