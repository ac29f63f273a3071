"""The snapshot cache: snapshots hold one row per customer, so a run computes each once and
keeps it outside the run folder, keyed by a content fingerprint of the data
(:func:`collect_kit.snapshot.fingerprint`) and the date.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from .. import engine, files, kpis


def cache_dir() -> Path:
    """The snapshot cache folder: ``$COLLECT_KIT_CACHE/snapshots`` (default
    ``~/.cache/collect_kit/snapshots``); it may not exist yet."""
    return files.cache_root() / "snapshots"


def cached_snapshots(
    portfolio, fingerprint: str, dates, log: logging.Logger, segmentation=None
) -> dict[pd.Timestamp, Path]:
    """The Parquet file of the snapshot as of each of ``dates`` for data with this
    ``fingerprint``: computed into the cache the first time, then reused. Raises
    :class:`~collect_kit.errors.DataAccessError` when the cache cannot be written.

    The dates not cached yet are computed together
    (:meth:`~collect_kit.sources.Portfolio.compute_snapshots`: one allocation for all).
    With a ``segmentation`` that has a ``risk_model``, a snapshot carries its ``p_pay``
    (:func:`collect_kit.segmentation.portfolio_snapshot`; the fingerprint must cover it).
    The month-end book and the open receivables of each date are cached beside it
    (:data:`kpis.BESIDE_SNAPSHOTS`). The portfolio reads them from the files from then on
    (:meth:`~collect_kit.sources.Portfolio.read_snapshots`); the allocations they were
    computed from are not kept."""
    from ..segmentation import portfolio_snapshot

    files.make_folder(cache_dir(), "snapshot cache (COLLECT_KIT_CACHE)")
    dates = [pd.Timestamp(d) for d in dates]
    paths = {d: cache_dir() / f"{fingerprint}-{d.date()}.parquet" for d in dates}
    todo = [d for d in dates if not paths[d].exists()]
    if len(todo) > 1:
        t0 = time.perf_counter()
        portfolio.compute_snapshots(todo)
        log.info("snapshots %s: computed together in %.1f s",
                 ", ".join(str(d.date()) for d in todo), time.perf_counter() - t0)  # fmt: skip
    for as_of, path in paths.items():
        if as_of not in todo:
            log.info("snapshot %s: cached", as_of.date())
        else:
            t0 = time.perf_counter()
            snap = portfolio_snapshot(segmentation, portfolio, as_of)
            engine.save_parquet(snap, path, "cached snapshot")
            log.info("snapshot %s: written in %.1f s", as_of.date(), time.perf_counter() - t0)
        beside = kpis.files_beside(path)
        if "receivables" in portfolio.tables and not all(f.exists() for f in beside.values()):
            # from the allocation the snapshot kept: the notebooks read them instead of
            # allocating again
            t0 = time.perf_counter()
            for name, result in kpis.results_beside(portfolio.tables, as_of).items():
                if not beside[name].exists():
                    engine.save_parquet(result, beside[name], f"cached {name}")
            log.info("books %s: %.1f s", as_of.date(), time.perf_counter() - t0)
        portfolio.read_snapshots({as_of: path})  # the run's experiments read it there too
    # the allocations are done with here (the notebooks read the files); kept, they slow
    # what comes next (at 1 M customers, 3 snapshots one by one 51.9 -> 47.8 s)
    engine.forget_built("allocation")
    return paths


def readouts_dir(run_id: str) -> Path:
    """Where a run keeps the readouts it computed once (removed when the run ends):
    ``$COLLECT_KIT_CACHE/readouts/<run-id>``."""
    return files.cache_root() / "readouts" / run_id


def stored_readouts(portfolio, as_of: pd.Timestamp, paths, run_id: str, log,
                    stop_if_interrupted: Callable[[], None]) -> dict[str, str]:  # fmt: skip
    """Read out each experiment config of ``paths`` once for the run (config path ->
    folder, :mod:`collect_kit.experiments.stored`). One that cannot be read out here is
    left to the notebooks, which then fail with its error as evidence; unless the run was
    stopped meanwhile (the error is then the interrupted query's):
    ``stop_if_interrupted()`` raises then."""
    from ..experiments.stored import _key, store

    out: dict[str, str] = {}
    folder = readouts_dir(run_id)
    for i, path in enumerate(dict.fromkeys(_key(p) for p in paths)):
        t0 = time.perf_counter()
        target = folder / f"{i:02d}"
        try:
            files.make_folder(folder, "readout cache (COLLECT_KIT_CACHE)")
            store(path, as_of, portfolio, target)
        except Exception as exc:  # noqa: BLE001 - the notebook shows the error in full
            stop_if_interrupted()
            log.warning("readout of %s not stored: %s", Path(path).name, str(exc)[:200])
            continue
        out[path] = str(target)
        log.info("readout %s: %.1f s", Path(path).name, time.perf_counter() - t0)
    return out
