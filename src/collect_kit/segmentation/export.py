"""Write customer_id, segment and strategy for the dialer or campaign tool."""

from __future__ import annotations

import os
from pathlib import Path

from ibis.expr.types import Table

from .compile import assigned
from .rules import Segmentation, SegmentationError

FORMATS = {".csv": "csv", ".parquet": "parquet"}


def export_assignments(
    segmentation: Segmentation, snapshot: Table, path: str | os.PathLike
) -> Path:
    """Write one row per customer (customer_id, segment, strategy) to CSV or Parquet.

    The format follows the extension (``.csv`` or ``.parquet``). The file is written under a
    temporary name and renamed when complete, so a reader never sees half a file.
    """
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise SegmentationError(f"--export: '{path}' must end in .csv or .parquet")
    if not path.parent.is_dir():
        raise SegmentationError(f"--export: folder '{path.parent}' does not exist")
    out = (
        assigned(segmentation, snapshot)
        .select("customer_id", "segment", "strategy")
        .order_by("customer_id")
    )
    tmp = path.with_name(f".{path.name}.partial")
    try:
        if fmt == "csv":
            out.to_csv(tmp)
        else:
            out.to_parquet(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
