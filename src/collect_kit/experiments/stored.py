"""Readouts computed once per report run, stored as Parquet tables, read by every notebook.

A monthly run shows the same experiments in three documents (the portfolio report's
strategy-test section, the readout, the plan's measured effects). The runner reads each
experiment out once (:func:`store`) into a folder of its own run; a notebook given that
folder (``readout_experiment(..., stored=...)``) loads it instead of querying the engine
again. A folder holds ``readout.json`` (the experiment config's path, the date read, the
currency, the display labels, or the reason nothing could be read yet) and one Parquet
file per table of :class:`~collect_kit.experiments.run.ExperimentReadout`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import pandas as pd

from ..errors import NoResultsYetError
from .config import load_experiment

META = "readout.json"


def _key(config_path) -> str:
    return os.path.realpath(config_path)


def store(config_path, as_of, portfolio, folder: Path) -> None:
    """Read out ``config_path`` as of ``as_of`` on ``portfolio`` into ``folder`` (created;
    written under a temporary name, renamed when whole). An experiment with nothing to
    read yet is stored as such."""
    from .run import ExperimentReadout, readout_experiment

    tmp = folder.with_name(folder.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    meta: dict = {"config": _key(config_path), "as_of": str(pd.Timestamp(as_of).date())}
    try:
        r = readout_experiment(config_path, as_of=as_of, portfolio=portfolio)
    except NoResultsYetError as exc:
        meta["pending"] = str(exc)
    else:
        meta.update(currency=r.currency, labels=r.labels, read_as_of=str(r.as_of.date()))
        for f in dataclasses.fields(ExperimentReadout):
            value = getattr(r, f.name)
            if isinstance(value, pd.DataFrame):
                value.to_parquet(tmp / f"{f.name}.parquet")
    (tmp / META).write_text(json.dumps(meta), encoding="utf-8")
    os.replace(tmp, folder)


def load(stored: dict | None, config_path, as_of):
    """The stored readout of ``config_path`` as of ``as_of`` (``stored``: config path ->
    folder, as the runner passes them), or None when there is none. Raises
    :class:`NoResultsYetError` when the run found nothing to read yet."""
    from .run import ExperimentReadout

    folder = (stored or {}).get(_key(config_path))
    if folder is None or not (Path(folder) / META).is_file():
        return None
    folder = Path(folder)
    meta = json.loads((folder / META).read_text(encoding="utf-8"))
    if meta["config"] != _key(config_path) or meta["as_of"] != str(pd.Timestamp(as_of).date()):
        return None
    if "pending" in meta:
        raise NoResultsYetError(meta["pending"])
    cfg, _ = load_experiment(config_path)
    frames = {
        f.name: pd.read_parquet(folder / f"{f.name}.parquet")
        for f in dataclasses.fields(ExperimentReadout)
        if (folder / f"{f.name}.parquet").is_file()
    }
    return ExperimentReadout(
        config=cfg, as_of=pd.Timestamp(meta["read_as_of"]), currency=meta["currency"],
        labels=meta["labels"], **frames,
    )  # fmt: skip
