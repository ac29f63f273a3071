"""The snapshot cache: snapshots hold one row per customer, so a run computes each once and
keeps it outside the run folder, keyed by a content fingerprint of the data
(:func:`collect_kit.snapshot.fingerprint`) and the date.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pandas as pd

from .. import engine, files


def cache_dir() -> Path:
    """The snapshot cache folder: ``$COLLECT_KIT_CACHE/snapshots`` (default
    ``~/.cache/collect_kit/snapshots``); it may not exist yet."""
    return files.cache_root() / "snapshots"


def cached_snapshot(
    portfolio, fingerprint: str, as_of: pd.Timestamp, log: logging.Logger, segmentation=None
) -> Path:
    """The Parquet file of the snapshot as of ``as_of`` for data with this ``fingerprint``:
    computed into the cache the first time, then reused. Raises
    :class:`~collect_kit.errors.DataAccessError` when the cache cannot be written.
    With a ``segmentation`` that has a ``risk_model``, the snapshot carries its ``p_pay``
    (:func:`collect_kit.segmentation.portfolio_snapshot`; the fingerprint must cover it)."""
    from ..segmentation import portfolio_snapshot

    files.make_folder(cache_dir(), "snapshot cache (COLLECT_KIT_CACHE)")
    path = cache_dir() / f"{fingerprint}-{as_of.date()}.parquet"
    if path.exists():
        log.info("snapshot %s: cached", as_of.date())
        return path
    t0 = time.perf_counter()
    files.write_atomic(
        path,
        lambda tmp: engine.write_parquet(portfolio_snapshot(segmentation, portfolio, as_of), tmp),
        "cached snapshot",
    )
    log.info("snapshot %s: computed in %.1f s", as_of.date(), time.perf_counter() - t0)
    return path
